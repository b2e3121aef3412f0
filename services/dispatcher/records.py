"""The values that travel between the intake, the outbox, the worker and the admin calls."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from tcxhooks.v1 import events_pb2


@dataclass(frozen=True)
class NewEvent:
    """A validated event and what routing needs: its names and filter attributes."""

    event: events_pb2.Event
    form_name: str
    json_type: str
    call_id: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Published:
    sequence: int
    duplicate: bool
    deliveries: int
    endpoints: tuple[str, ...] = ()  # the endpoints that got a delivery of it
    refused: tuple[str, ...] = ()    # the endpoints it was routed to that took none


# route(new_event, attributes incl. the chain's) → endpoint names the event goes to
Router = Callable[[NewEvent, dict[str, set[str]]], list[str]]


# Claimed, AttemptRecord and Outcome are named tuples: the delivery path makes one of each per webhook,
# and a tuple is built several times faster than a frozen dataclass.
class Claimed(NamedTuple):
    id: int
    endpoint: str
    event_id: str
    chain: str
    sequence: int
    attempts: int
    failures: int
    created_at: float
    payload: bytes
    message_id: str
    endpoint_sequence: int


class AttemptRecord(NamedTuple):
    number: int
    at: float
    http_status: int
    latency: float
    response: str
    error: str


class Outcome(NamedTuple):
    """What became of one claimed delivery. `result`: delivered, retry, dead or release."""

    delivery: Claimed
    result: str
    attempt: AttemptRecord | None = None
    next_attempt_at: float = 0.0


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    event_id: str
    endpoint: str
    chain: str
    sequence: int
    event_type: str
    call_id: str
    status: int
    attempts: int
    created_at: float
    next_attempt_at: float
    message_id: str
    endpoint_sequence: int
    attempt_log: list[AttemptRecord] = field(default_factory=list)


@dataclass(frozen=True)
class EndpointRow:
    name: str
    state: int
    failures: int
    last_error: str
