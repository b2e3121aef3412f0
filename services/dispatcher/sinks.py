"""The seam between the outbox and what an endpoint does with a delivery.

    class Sink(Protocol):            # a webhook endpoint (webhook.py) or a CRM adapter
        kind: str                    # "form", "json", "bitrix24"…: shown as the endpoint's format
        target: str                  # where deliveries go, as operators may see it (no secrets)
        async def deliver(self, delivery: Delivery) -> Result
        async def ping(self) -> Result
        async def close(self) -> None

The worker claims a delivery, hands it to its endpoint's sink, and turns the sink's `Result` into
the outcome: the retry schedule and `Retry-After`, dead letters, the endpoint's state (`GONE`
disables it), metrics and the attempt log are the worker's, so every sink gets them alike. A sink
answers a failed attempt with a verdict instead of raising: an exception escaping `deliver` is
recorded and retried like a failed attempt, and logged with its stack trace as a fault.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Protocol

from tcxhooks.v1 import events_pb2


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # done: the chain's next event may go
    RETRY = "retry"  # try again later (the schedule, or the Retry-After given)
    GONE = "gone"  # the target is gone for good: the endpoint is disabled until re-enabled
    DEAD = "dead"  # this delivery can never succeed: dead at once, the chain moves on


class Delivery(NamedTuple):
    """One attempt's input: the event and the numbers a receiver sees."""

    id: int
    message_id: str  # webhook-id: the same on every attempt and redelivery of this event
    event: events_pb2.Event
    sequence: int  # the event's place in its chain, across endpoints
    endpoint_sequence: int  # its place among the events of its chain routed to this endpoint (gap-free)
    attempt: int  # 1 on the first attempt
    created_at: float  # unix time the event was stored


class Result(NamedTuple):
    verdict: Verdict
    status: int = 0  # the final answer's status (HTTP), 0 when none came
    response: str = ""  # the start of that answer, for the attempt log
    error: str = ""  # why the attempt failed, "" when it did not (never a secret)
    retry_after: float | None = None  # seconds the target asked us to wait before the next attempt


class Sink(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def target(self) -> str: ...

    async def deliver(self, delivery: Delivery) -> Result: ...

    async def ping(self) -> Result:
        """Proves the target answers and accepts our credentials, changing nothing it keeps."""
        ...

    async def close(self) -> None: ...
