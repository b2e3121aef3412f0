"""Runs the call graph: Call Control changes in, graph decisions on time, state + events committed together.

    engine = Engine(graph, registry, publisher, pbx, poke, reconciler=reconciler)
    await engine.restore()                       # registry + unsent outbox from the store
    cc = CallControl(pbx, engine)                # engine is the Sink
    app.spawn(engine.run(app.stopping), "engine")

Changes are applied to the graph at once (in arrival order); a committer writes every changed
chain and the new outbox rows in one transaction (group commit), and only then gives the rows to
the publisher, so nothing is published that a crash could un-happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2, media_service_pb2

from .callgraph import FORGET_AFTER, CallGraph, Emitted
from .errors import PbxError
from .metrics import ACTIVE_CALLS, MALFORMED
from .participant import Participant
from .pbx import xapi
from .pbx.client import PbxClient
from .reconcile import Reconciler
from .registry import OutRow, Registry

log = logging.getLogger(__name__)
TICK = 0.1
SETTLE_EVERY = 0.2  # while ActiveCalls still lists a call whose legs all left, ask again this often
SETTLE_PAUSE = 10.0  # ActiveCalls failed: calls end after the grace for this long before it is asked again
LOUD_ANOMALIES = frozenset({"unknown_status", "participant_failed"})


def rows_of(item: Emitted) -> list[OutRow]:
    """The outbox rows of one emitted event: the Event, then RecordingsDue for an ended conversation."""
    stamp = Timestamp()
    stamp.FromNanoseconds(int(item.occur * 1e9))
    needs = ",".join(n for n, on in (("did", item.needs_did), ("callback", item.needs_callback)) if on)
    event = events_pb2.Event(event_id=item.event_id, chain=item.chain, occur_time=stamp, call=item.event)
    rows = [OutRow(item.chain, "dispatcher", event.SerializeToString(), needs, message=event)]
    if item.leg is not None:
        due = media_service_pb2.RecordingsDueRequest(leg=item.leg, chain=item.chain, ended=item.event)
        rows.append(OutRow(item.chain, "media", due.SerializeToString(), needs))
    return rows


class Handover(Protocol):
    """Takes the outbox rows just committed (the publisher; a replay's collector)."""

    def add(self, rows: list[OutRow]) -> None: ...


class Engine:
    def __init__(
        self,
        graph: CallGraph,
        registry: Registry,
        publisher: Handover,
        pbx: PbxClient | None,
        poke: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.graph = graph
        self.registry = registry
        self.publisher = publisher
        self.pbx = pbx
        self.poke = poke
        self.clock = clock
        self.reconciler = reconciler
        self._wake = asyncio.Event()
        self._settle_wake = asyncio.Event()
        self._settle_paused_until = 0.0  # monotonic
        self._committed = asyncio.Event()
        self.last_change = 0.0  # unix time of the last Call Control change applied
        self.snapshots = 0
        self._flushing = asyncio.Lock()

    async def restore(self) -> None:
        chains = await self.registry.load_chains()
        self.graph.restore(chains)
        # Calls that ended lately may still have participants 3CX removes a moment later (an extension's other
        # devices, a trunk leg): a resync must not take them for new calls.
        now = self.clock()
        self.graph.finished.update(dict.fromkeys(await self.registry.known_calls(now - FORGET_AFTER), now))
        rows = await self.registry.load_outbox()
        self.publisher.add(rows)
        ACTIVE_CALLS.set(len(self.graph.chains))
        if chains or rows:
            log.info("restored %d calls and %d unsent outbox rows from the store", len(chains), len(rows))

    # --- Sink of CallControl -----------------------------------------------------------------
    async def snapshot(self, dns: list[dict[str, Any]], participants: list[Participant]) -> None:
        for info in dns:
            if info["type"]:
                self.graph.facts.dn_types[info["dn"]] = info["type"]
        if self.snapshots == 0 and self.pbx is not None:
            # Calls already running when the monitor starts are dated by the PBX's own start time (docs/webhooks.md §2).
            running = sorted({p.callid for p in participants} - set(self.graph.chains))
            if running:
                try:
                    self.graph.start_hints.update(await xapi.call_start_times(self.pbx, running))
                except PbxError as exc:
                    log.warning("start times of running calls unknown, dating them now: %s", exc)
        self.graph.reconcile(participants, self.clock())
        self.snapshots += 1
        self._changed()
        await self.flush()

    async def upsert(self, participant: Participant) -> None:
        self.graph.upsert(participant, self.clock())
        self._changed()

    async def remove(self, dn: str, pid: int) -> None:
        self.graph.remove(dn, pid, self.clock())
        self._changed()

    async def dn_changed(self, dn: str) -> None:
        if self.poke is not None:
            self.poke()

    def _changed(self) -> None:
        self.last_change = self.clock()
        for reason, detail in self.graph.anomalies:
            MALFORMED.labels(reason).inc()
            log.log(
                logging.WARNING if reason in LOUD_ANOMALIES else logging.INFO,
                "Call Control anomaly: %s (%s)",
                reason,
                detail[:300],
            )
        self.graph.anomalies.clear()
        if self.graph.unasked:
            self._settle_wake.set()  # a call's last leg just left: ask the PBX at once whether it is over
        self._wake.set()

    # --- loops ---------------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        committer = asyncio.create_task(self._committer(stopping))
        settler = asyncio.create_task(self._settler())
        try:
            while not stopping.is_set():
                await self.decide_due()
                await sleep_or_stop(TICK, stopping)
        finally:
            settler.cancel()
            await asyncio.gather(settler, return_exceptions=True)
            self._wake.set()
            await committer

    async def _settler(self) -> None:
        """Asks ActiveCalls as soon as a call's last leg left (and again while the PBX still lists it)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settle_wake.wait(), SETTLE_EVERY if self.graph.unsettled else None)
            self._settle_wake.clear()
            await self.settle()

    async def settle(self) -> None:
        """Ends the settling calls the PBX no longer lists (docs/3cx.md: XAPI ActiveCalls)."""
        pending = self.graph.settling()
        if not pending or self.pbx is None or time.monotonic() < self._settle_paused_until:
            return
        try:
            listed = await xapi.active_call_numbers(self.pbx, sorted({n for ns in pending.values() for n in ns}))
        except PbxError as exc:
            self._settle_paused_until = time.monotonic() + SETTLE_PAUSE
            log.warning("ActiveCalls unavailable, calls end after the grace for %.0f s: %s", SETTLE_PAUSE, exc)
            return
        self.graph.settle(self.clock(), listed, asked=pending)  # calls that began settling meanwhile: asked next
        self._changed()

    async def decide_due(self) -> None:
        """Takes the graph's decisions that are due now (asking XAPI ActiveCalls where one depends on it)."""
        now = self.clock()
        due = self.graph.due(now)
        if not due:
            return
        listed: dict[int, tuple[str, ...]] = {}
        asking = sorted({number for callid in due for number in self.graph.needs_outside(callid, now)})
        if self.pbx is not None and asking:
            try:
                listed = await xapi.active_call_parties(self.pbx, asking)
            except PbxError as exc:
                log.warning("ActiveCalls unavailable, deciding without it: %s", exc)
        for callid in due:
            self.graph.decide(callid, now, listed)
        self._wake.set()

    async def _committer(self, stopping: asyncio.Event) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the store is down: keep the state in memory and try again
                log.error("cannot commit call state: %s", exc)
                await asyncio.sleep(1)
                self._wake.set()
            if stopping.is_set() and not self.graph.dirty and not self.graph.out:
                return

    async def flush(self) -> None:
        """Commits changed chains and new events, then hands the events to the publisher."""
        async with self._flushing:
            graph = self.graph
            if not graph.dirty and not graph.gone and not graph.out:
                return
            items = graph.drain()
            dirty = [c for c in graph.dirty if c in graph.chains]
            # Serialised now: the graph may change while the transaction runs.
            changed = [(c, json.dumps(graph.chains[c].to_dict(), separators=(",", ":"))) for c in dirty]
            finished = list(graph.gone)
            rows = [row for item in items for row in rows_of(item)]
            graph.dirty.clear()
            graph.gone.clear()
            try:
                await self.registry.commit(changed, finished, rows)
            except Exception:
                graph.out[:0] = items
                graph.dirty.update(dirty)
                graph.gone.update(finished)
                raise
            ACTIVE_CALLS.set(len(graph.chains))
            self.publisher.add(rows)
            if self.reconciler is not None:
                self.reconciler.observe(items, finished)  # committed: what the monitor reported, and ended calls

    async def commit_recovered(self, items: list[Emitted], callids: list[int]) -> None:
        """Outage recovery's events of calls the graph never held: committed with the calls marked known (so a
        repeated recovery skips them), then handed to the publisher like the graph's own."""
        rows = [row for item in items for row in rows_of(item)]
        async with self._flushing:
            await self.registry.commit([], callids, rows)
        self.publisher.add(rows)
