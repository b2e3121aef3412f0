"""Outage recovery: the calls that rang and ended while the Call Control WebSocket was down (or the monitor was
stopped) still reach the CRM, as the `call.ended` webhooks they would have given, read from the PBX call log.

    recoverer = Recoverer(pbx, graph, registry, engine, delay=5.0)
    await recoverer.restore()                          # when the socket was last known good, from the store
    callcontrol = CallControl(pbx, engine, on_link=recoverer.link)
    app.spawn(recoverer.run(app.stopping), "recover")

Call Control has no history: a resync shows the calls alive at that moment, nothing of a call that came and
went in between. So when a session is resynced after a gap, the call log (`ReportCallLogData`, docs/3cx.md §5.6)
of the calls that started from when the socket was last known good (minus MARGIN: a silent drop is noticed
only by the ping timeout, and the PBX's clock may differ) to the resync is read, `delay` after the resync (the
PBX writes its log after a call). A call in it that touched a monitored DN, that the monitor holds no chain of
and never finished (the store keeps the call numbers of finished chains for MAX_WINDOW), and that has ended,
gets its ended events built from its rows (recovered.py) and committed through the outbox with ids that do not
change, so a repeated recovery publishes nothing twice. Ringing and answered events are not invented after the
fact.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import common_pb2

from .callgraph import CallGraph, Emitted
from .engine import Engine
from .errors import PbxError, PbxHttpError
from .metrics import RECOVERED
from .pbx import xapi
from .pbx.client import PbxClient
from .reconcile import BadCallLog
from .recovered import events_of
from .registry import Registry

log = logging.getLogger(__name__)
MARGIN = 60.0  # the window starts this long before the socket was last known good
MAX_WINDOW = 86_400.0  # a longer gap is recovered for its last day only; finished calls are remembered as long
HEARTBEAT = 5.0  # how often "still good" is written to the store while the socket is up
LATE_READ = 6.0  # each window is read again this many `delay`s after its first read: rows the PBX wrote late
FORGET_EVERY = 600.0  # how often finished calls older than MAX_WINDOW are deleted from the store


@dataclass(frozen=True)
class _Window:
    start: float  # unix seconds, the call log's period
    end: float
    due: float  # monotonic
    settled: frozenset[int] | None = None  # at the second read: the calls the first one settled


class Recoverer:
    def __init__(self, pbx: PbxClient, graph: CallGraph, registry: Registry, engine: Engine, delay: float) -> None:
        self.pbx = pbx
        self.graph = graph
        self.registry = registry
        self.engine = engine
        self.delay = delay
        self.enabled = True
        self.good: float | None = None  # unix time the socket was last known good (None: never)
        self.connected = False
        self.windows: asyncio.Queue[_Window] = asyncio.Queue()
        self._changed = asyncio.Event()

    async def restore(self) -> None:
        """The last good moment a previous run stored: the gap since then is recovered at the first resync."""
        try:
            self.good = await self.registry.load_good()
        except Exception as exc:  # the store is down: this start's gap is not recovered
            log.error(
                "cannot read when the Call Control socket was last good; the gap before this start is not "
                "recovered: %s",
                exc,
            )

    def link(self, up: bool) -> None:
        """CallControl's callback: True once a session is resynced, False when it is lost."""
        now = time.time()
        if up and self.good is not None:
            self._window(self.good, now)
        self.connected = up
        self.good = now
        self._changed.set()

    def gap(self, since: float) -> None:
        """CallControl's callback at a sequence gap: frames after `since` (unix time) were lost while the socket
        stayed up, and the resync that follows sees only the calls still alive."""
        self._window(since, time.time())

    def _window(self, since: float, now: float) -> None:
        if self.enabled:  # the period is sent in whole seconds: its end is rounded up, not cut
            self.windows.put_nowait(
                _Window(max(since - MARGIN, now - MAX_WINDOW), math.ceil(now), time.monotonic() + self.delay)
            )

    async def run(self, stopping: asyncio.Event) -> None:
        worker = asyncio.create_task(self._worker())
        forgotten = time.monotonic()
        try:
            while not stopping.is_set():
                self._changed.clear()
                if self.connected:
                    self.good = time.time()
                await self._save()
                if time.monotonic() - forgotten > FORGET_EVERY:
                    forgotten = time.monotonic()
                    await self._forget()
                await sleep_or_stop(HEARTBEAT, self._changed, stopping)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            if self.connected:
                self.good = time.time()
            await self._save()

    async def _save(self) -> None:
        if self.good is None:
            return
        try:
            await self.registry.save_good(self.good)
        except Exception as exc:  # the store is down: the last stored moment stays, an earlier one (safe)
            log.warning("cannot store when the Call Control socket was last good: %s", exc)

    async def _forget(self) -> None:
        try:
            await self.registry.forget_known(time.time() - MAX_WINDOW - 2 * MARGIN)
        except Exception as exc:
            log.warning("cannot delete old finished calls: %s", exc)

    async def _worker(self) -> None:
        while True:
            window = await self.windows.get()
            await asyncio.sleep(max(0.0, window.due - time.monotonic()))
            if not self.enabled:
                continue
            settled = await self.recover(window.start, window.end, window.settled)
            if window.settled is None:  # the second read: rows written late, or a first read that failed
                again = _Window(window.start, window.end, 0.0, frozenset(settled))
                asyncio.get_running_loop().call_later(LATE_READ * self.delay, self.windows.put_nowait, again)

    async def recover(self, start: float, end: float, earlier: frozenset[int] | None = None) -> set[int]:
        """Reads the call log of [start, end] and publishes the ended events of the calls the monitor missed.
        `earlier`: at the second read, the calls the first settled. Returns the calls settled by now (all but
        those still going or not committed)."""
        skip = earlier or frozenset()
        span = f"{xapi.iso(start)}..{xapi.iso(end)}"
        again = f"; read again in {LATE_READ * self.delay:.0f} s" if earlier is None else ""
        try:
            period = await xapi.call_log_period(self.pbx, start, end)
            known = set(self.graph.chains) | set(self.graph.finished) | await self.registry.known_calls(start)
        except PbxHttpError as exc:
            if exc.status == 403:
                self._forbidden()
            else:
                self._lost(span, exc, again)
            return set()
        except Exception as exc:  # XAPI or the store failed: nothing of this window can be told apart
            self._lost(span, exc, again)
            return set()
        outcomes: dict[str, int] = {}
        candidates: list[int] = []
        settled: set[int] = set()
        for callid in sorted((set(period.calls) | period.broken) - skip):
            rows = period.calls.get(callid, [])
            if callid in known:
                outcome = "known"
            elif callid in period.broken:
                outcome = "error"
                log.warning("call %s of the outage %s: a call-log row lacks a field, not recovered", callid, span)
            elif not any(dn in self.graph.facts.dn_types for row in rows for dn in (row.source_dn, row.destination_dn)):
                outcome = "not_monitored"
            elif any(row.status == "Waiting" for row in rows):
                outcome = "in_progress"
            else:
                candidates.append(callid)
                continue
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome != "in_progress":
                settled.add(callid)
        published, later = await self._publish(period, candidates, span)
        settled |= set(candidates) - later
        for outcome, count in published.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
        for outcome, count in outcomes.items():
            RECOVERED.labels(outcome).inc(count)
        log.info(
            "outage recovery of %s%s: %s",
            span,
            "" if earlier is None else " (second read)",
            ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "no new calls in the call log",
        )
        return settled | skip

    async def _publish(
        self, period: xapi.CallLogPeriod, candidates: list[int], span: str
    ) -> tuple[dict[str, int], set[int]]:
        """Publishes the candidates' ended events; returns the outcome counts and the calls left for a later read
        (still going, or not committed)."""
        if not candidates:
            return {}, set()
        outcomes = {"in_progress": 0, "not_reported": 0, "error": 0}
        try:
            # The log is written after a call, but a call transferred outside may still go on beyond our DNs.
            active = await xapi.active_call_numbers(self.pbx, candidates)
        except PbxError as exc:
            log.warning("ActiveCalls unavailable during outage recovery, taking the logged calls as ended: %s", exc)
            active = set()
        items: list[Emitted] = []
        published: list[int] = []
        later: set[int] = set()
        for callid in candidates:
            if callid in active:
                outcomes["in_progress"] += 1
                later.add(callid)
                continue
            try:
                events = events_of(callid, period.calls[callid], self.graph.facts, self.graph.stamp)
            except BadCallLog as exc:
                outcomes["error"] += 1
                log.warning("call %s of the outage %s: call log unusable, not recovered: %s", callid, span, exc)
                continue
            if events[0].event.direction == common_pb2.DIRECTION_INTERNAL and not self.graph.settings.internal_calls:
                outcomes["not_reported"] += 1
                continue
            items += events
            published.append(callid)
        if published:
            try:
                await self.engine.commit_recovered(items, published)
            except Exception as exc:
                log.error(
                    "outage %s: cannot commit the ended events of %d recovered calls: %s", span, len(published), exc
                )
                outcomes["error"] += len(published)
                later.update(published)
                published = []
        for callid in published:
            log.info("call %s ended during the outage %s: its ended webhook is sent from the call log", callid, span)
        counts = {**{k: v for k, v in outcomes.items() if v}, **({"published": len(published)} if published else {})}
        return counts, later

    def _forbidden(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        RECOVERED.labels("forbidden").inc()
        log.error(
            "outage recovery is off for this run: the PBX refuses the call log (HTTP 403); it needs an API "
            "client with System Owner rights, or set [pbx] recover_outages = false"
        )

    @staticmethod
    def _lost(span: str, exc: Exception, again: str) -> None:
        RECOVERED.labels("error").inc()
        log.error(
            "outage %s: the call log cannot be read (%s)%s",
            span,
            exc,
            again or "; calls that rang and ended in it send no webhook",
        )
