"""The values that travel between the intake, the outbox, the worker and the admin calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from tcxhooks.v1 import events_pb2


# The values made once per event or per webhook are named tuples: a tuple is built several times
# faster than a frozen dataclass.
class NewEvent(NamedTuple):
    """A validated event and what routing needs: its names and filter attributes."""

    event: events_pb2.Event
    form_name: str
    json_type: str
    call_id: str
    attributes: dict[str, str]
    fence: tuple[str, int] | None = None  # (lease, number) of a producer acting under a lease


class Published(NamedTuple):
    sequence: int
    duplicate: bool
    deliveries: int
    endpoints: tuple[str, ...] = ()  # the endpoints that got a delivery of it
    refused: tuple[str, ...] = ()  # the endpoints it was routed to that took none
    stale: bool = False  # not stored: its fence is older than one seen for the same lease


# route(new_event, attributes incl. the chain's) → endpoint names the event goes to
Router = Callable[[NewEvent, dict[str, set[str]]], list[str]]


@dataclass(frozen=True)
class Routing:
    """Where a publish sends its events, as the endpoints stand at that moment."""

    route: Router
    track: bool = False  # keep each chain's DIDs, queues and users (some endpoint filters on them)
    # endpoints whose filters pass only some events: they number the events they get themselves
    # (x-tcxhooks-endpoint-sequence); an endpoint that gets every event shares the chain's numbers
    filtered: frozenset[str] = frozenset()
    refusing: Mapping[str, str] = field(default_factory=dict)  # endpoint → why it takes no new rows


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
