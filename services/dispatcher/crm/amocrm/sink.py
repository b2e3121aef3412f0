"""The amoCRM / Kommo adapter as the dispatcher sees it: `[crm:NAME] type = amocrm`.

    sink = AmoSink(AmoSettings("amo", url="https://example.amocrm.ru", token="…"), deps)
    app.spawn(sink.run(stopping), "crm.amo")           # logs answered legs whose recording never came
    reply = await sink.deliver(event)

Around the framework's step engine this adds what amoCRM's "a call is added once, never changed"
needs (docs/crm.md, "amoCRM / Kommo"):
- the event's facts are stored in the leg before any request: an answered leg's call.ended sends
  nothing, its recording event later logs the call with the facts and the link;
- a leg waiting for its recording leaves a marker (`wait:<leg>`); `run` logs it without a link
  once `recording_wait` is over, so nothing waits forever;
- a create request is marked `pending` in the stored leg before it is sent (see mapping.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2

from ..client import JsonApi
from ..engine import Trace, run_steps
from ..errors import CrmError
from ..event import CrmEvent
from ..legstate import LegStore
from ..plan import Call
from ..sink import CheckLine, Route, SinkDeps, SinkReply, deliver_with, delivered, failed, fresh, replied
from .auth import AmoAuth
from .client import AmoApi
from .leg import CREATES, RECORDING_TIMEOUT, AmoLeg, absorb
from .mapping import AmoMapping
from .settings import AmoSettings

log = logging.getLogger(__name__)
WAIT = "wait:"  # key prefix of the markers of legs waiting for their recording
SWEEP_EVERY = 5.0
RETRY_WAIT = 60.0  # a timed-out leg amoCRM did not take is tried again after this long
PRUNE_EVERY = 3600.0


class _WriteAhead:
    """A Caller that marks a create request `pending` in the stored leg before it sends it, and takes
    the mark back when amoCRM refused the request outright (4xx: nothing was created)."""

    def __init__(self, amo: AmoApi, legs: LegStore, crm: str, key: str) -> None:
        self.amo, self.legs, self.crm, self.key = amo, legs, crm, key

    async def call(self, call: Call) -> Any:
        if call.step not in CREATES:
            return await self.amo.call(call)
        await self._mark(call.step)
        try:
            return await self.amo.call(call)
        except CrmError as error:
            if 400 <= error.status < 500:
                await self._mark("")
            raise

    async def _mark(self, step: str) -> None:
        stored = await self.legs.get(self.crm, self.key) or {}
        await self.legs.put(self.crm, self.key, {**stored, "pending": step, "search": ""})


class AmoSink:
    def __init__(self, settings: AmoSettings, deps: SinkDeps) -> None:
        self.name = settings.name
        self.target = settings.url
        self.settings = settings
        self.options = settings.options
        self.deps = deps
        self.http = JsonApi.of(settings)
        auth = AmoAuth(settings.name, deps.legs, self.http, settings.url, token=settings.token, oauth=settings.oauth)
        self.amo = AmoApi(self.http, settings.url, auth)
        self.mapping = AmoMapping(settings.options)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # per leg: the lock, how many hold or want it

    async def deliver(self, event: events_pb2.Event) -> SinkReply:
        return await deliver_with(event, self._steps)

    async def _steps(self, view: CrmEvent, trace: Trace) -> None:
        key = self.mapping.key(view)
        if key is None:
            return
        async with self._leg_lock(key):  # a recording event and the wait's end never log one leg at once
            await self._absorb(view, key)
            await run_steps(
                self.mapping,
                view,
                time.time(),
                legs=self.deps.legs,
                crm=self.name,
                caller=_WriteAhead(self.amo, self.deps.legs, self.name, key),
                fresh=fresh(view, self.settings.stale_after),
                trace=trace,
            )

    @contextlib.asynccontextmanager
    async def _leg_lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _absorb(self, view: CrmEvent, key: str) -> None:
        """Stores what the event tells about the leg; marks a leg that starts waiting for its recording."""
        legs = self.deps.legs
        before = AmoLeg.load(await legs.get(self.name, key))
        after = absorb(view, before, self.options.recording_wait, self.options.links)
        if after == before:
            return
        await legs.put(self.name, key, after.dump())
        if after.waiting and not before.waiting:
            await legs.put(self.name, WAIT + key, {"until": time.time() + self.options.recording_wait})

    async def ping(self) -> SinkReply:
        trace = Trace()
        try:
            account = await self.amo.call_json("GET", "/api/v4/account", "amo ping")
        except CrmError as error:
            return failed(error, trace)
        trace.status = 200
        trace.lines.append(f"amoCRM account {account.get('subdomain', '?')} answers")
        return delivered(trace)

    async def run(self, stopping: asyncio.Event) -> None:
        """Logs the legs whose recording did not come in time; prunes old leg states; until stopping."""
        last_prune = float("-inf")
        while not stopping.is_set():
            try:
                await self.sweep()
                if time.monotonic() - last_prune > PRUNE_EVERY:
                    last_prune = time.monotonic()
                    await self.deps.legs.prune(self.deps.keep_days * 86400.0)
            except Exception:  # the store or amoCRM failing must not end the upkeep
                log.exception("amoCRM %s: upkeep failed; trying again", self.name)
            await sleep_or_stop(SWEEP_EVERY, stopping)

    async def sweep(self, now: float | None = None) -> int:
        """Logs the legs whose `recording_wait` is over; returns how many it took."""
        now = time.time() if now is None else now
        legs, taken = self.deps.legs, 0
        for marker, value in await legs.keys(self.name, WAIT):
            if float(value.get("until", 0)) > now or await legs.take(self.name, marker) is None:
                continue
            taken += 1
            key = marker[len(WAIT) :]
            chain, _, _ = key.rpartition("-")
            reply = await replied(
                CrmEvent(
                    kind=RECORDING_TIMEOUT,
                    event_id=f"{key}:{RECORDING_TIMEOUT}",
                    chain=chain,
                    occurred_at=now,
                    call_id=key,
                ),
                self._steps,
            )
            if reply.verdict in ("retry", "gone"):
                await legs.put(self.name, marker, {"until": now + RETRY_WAIT})
                log.warning(
                    "amoCRM adapter %s: leg %s not logged yet (%s); trying again in %.0fs",
                    self.name,
                    key,
                    reply.error,
                    RETRY_WAIT,
                )
            elif reply.verdict == "dead":
                log.error("amoCRM adapter %s: amoCRM refused leg %s: %s", self.name, key, reply.error)
        return taken

    def routes(self) -> list[Route]:
        return []

    async def check(self) -> list[CheckLine]:
        from .check import check_lines

        return await check_lines(self.name, self.amo, self.options)

    async def close(self) -> None:
        await self.http.close()
