"""A CRM adapter as the dispatcher sees it: a delivery sink beside plain webhook endpoints.

    sink = registry.build(settings, deps)        # one per [crm:NAME]
    app.spawn(sink.run(app.stopping), "crm.b24") # its background upkeep (user map, tokens, pruning)
    reply = await sink.deliver(event)            # one claimed delivery: the CRM calls for this event
    reply.verdict                                # delivered / retry / dead / gone (as a 2xx / 5xx / … / 410)
    endpoint_sink = CrmEndpoint(sink, "bitrix24")  # what the worker calls

The outbox, per-chain ordering, retries, dead letters and redelivery stay the dispatcher's: a sink
only turns one event into its CRM's calls (docs/crm.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from aiohttp import web

from tcxhooks.v1 import events_pb2

from ..sinks import Delivery, Result, Verdict
from .engine import Trace
from .errors import CrmError
from .event import CrmEvent
from .legstate import LegStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SinkReply(NamedTuple):
    """The outcome of one delivery to a CRM. `status`: the CRM's last HTTP status (0: none);
    `summary`: what was done, for the attempt log; `retry_after`: seconds the CRM asked us to wait."""

    verdict: str  # delivered, retry, dead or gone
    status: int
    summary: str
    error: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class CheckLine:
    """One verdict line of `tcxhooks check` (`item` e.g. "b24 auth")."""

    item: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Route:
    """A path the CRM calls on the dispatcher's listener, under `/crm/<name>/`."""

    method: str
    path: str  # e.g. "install", "event"
    handler: Handler


@dataclass(frozen=True)
class PlacedCall:
    chain: str  # the call chain the PBX started ("" when the monitor could not tell yet)
    pbx_call_number: int


class CallRefused(Exception):
    """The monitor or the PBX could not place a click-to-call; the text says why (no secrets)."""


PlaceCall = Callable[[str, str], Awaitable[PlacedCall]]  # (extension, number) → the call started


@dataclass(frozen=True)
class SinkDeps:
    """What the dispatcher hands every adapter."""

    legs: LegStore
    public_url: str  # how the CRM reaches the dispatcher's listener ("" when it has none)
    place_call: PlaceCall | None  # asks the monitor to start a call (click-to-call)
    keep_days: int


class CrmSink(Protocol):
    name: str  # the [crm:NAME] name, also the endpoint's
    target: str  # the CRM's address as operators may see it (no secret in it)

    async def deliver(self, event: events_pb2.Event) -> SinkReply:
        """The event's CRM calls, made (or resumed) now."""

    async def ping(self) -> SinkReply:
        """One request proving the CRM answers and takes our credentials, changing nothing in it."""

    async def run(self, stopping: asyncio.Event) -> None:
        """Background upkeep until `stopping` (user maps, tokens, pruning); returns when stopping."""

    def routes(self) -> list[Route]:
        """What the CRM calls on the dispatcher's listener (install callbacks, click-to-call)."""

    async def check(self) -> list[CheckLine]:
        """`tcxhooks check` lines: read-only probes of auth, lines, user map, …"""

    async def close(self) -> None: ...


class CrmEndpoint:
    """A CRM adapter behind the worker's sink seam (sinks.Sink): the outbox's retries, dead letters,
    endpoint states and metrics apply to it as to any endpoint."""

    def __init__(self, sink: CrmSink, kind: str) -> None:
        self.crm = sink
        self.kind = kind  # bitrix24 / amocrm / zammad
        self.target = sink.target

    async def deliver(self, delivery: Delivery) -> Result:
        return _result(await self.crm.deliver(delivery.event))

    async def ping(self) -> Result:
        return _result(await self.crm.ping())

    async def close(self) -> None:
        await self.crm.close()


def _result(reply: SinkReply) -> Result:
    return Result(Verdict(reply.verdict), reply.status, reply.summary, reply.error, reply.retry_after)


def fresh(view: CrmEvent, stale_after: float, now: float | None = None) -> bool:
    """Whether a real-time step of this event is still worth doing."""
    return (time.time() if now is None else now) - view.occurred_at <= stale_after


def delivered(trace: Trace) -> SinkReply:
    return SinkReply("delivered", trace.status or 200, trace.text() or "nothing to do for this event")


def failed(error: CrmError, trace: Trace) -> SinkReply:
    return SinkReply(error.verdict, error.status, trace.text(), str(error)[:1024], error.retry_after)


Steps = Callable[[CrmEvent, Trace], Awaitable[None]]


async def deliver_with(event: events_pb2.Event, steps: Steps) -> SinkReply:
    """One delivery of an adapter: the event read (dead when no adapter can read it), the adapter's
    `steps` made (they note each call in the trace), and the outcome as a SinkReply."""
    try:
        view = CrmEvent.of(event)
    except ValueError as exc:
        return SinkReply("dead", 0, "", f"unreadable event: {exc}")
    return await replied(view, steps)


async def replied(view: CrmEvent, steps: Steps) -> SinkReply:
    """The outcome of an adapter's `steps` for an event already read."""
    trace = Trace()
    try:
        await steps(view, trace)
    except CrmError as error:
        return failed(error, trace)
    return delivered(trace)
