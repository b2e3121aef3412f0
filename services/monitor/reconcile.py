"""Post-call reconciliation (docs/3cx.md §4.7): what the monitor reported about a call against the PBX's call log.

    reconciler = Reconciler(pbx, facts, delay=5.0)
    engine = Engine(..., reconciler=reconciler)   # after each commit: reconciler.observe(items, finished)
    app.spawn(reconciler.run(app.stopping), "reconcile")

The call sequences of §4 are partly inferred, so every call the monitor reported is read back from
`ReportCallLogData` once it has ended (a few seconds later: the PBX writes its log after the call; read again
twice if the rows are not there yet), and the answer (answered or missed), who answered and the direction are
compared. The result is a metric (`tcxhooks_monitor_reconciled_calls_total{outcome}`, and per field that
differs `tcxhooks_monitor_reconcile_disagreements_total{field}`) and a warning per disagreement.

The check sits beside the event path, never in it: `observe` only updates a dict and puts a job in a bounded
queue (full: the check is dropped and counted, the events are untouched), and a few workers read the log, up to
CALL_LOG_BATCH calls per query (a busy PBX is not asked one report per call).
The call log needs System Owner rights: a 403 turns the check off for the rest of the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from tcxhooks.v1 import common_pb2, events_pb2

from .callgraph import DIRECTIONS, Emitted
from .errors import PbxError, PbxHttpError
from .facts import Facts
from .metrics import RECONCILE_DISAGREEMENTS, RECONCILED
from .pbx import xapi
from .pbx.client import PbxClient

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000  # checks waiting for their delay; more are dropped
WORKERS = 4
READS = 3  # the first read and two more, `delay` apart, while the call has no rows yet
WATCHED = 100_000  # calls being followed at once (a chain that never finishes must not grow memory for ever)
BEFORE = 600.0  # the call-log window starts this long before the call's first event (its ringing or dialling)
AFTER = 60.0
_DIRECTION_NAMES = {value: name for name, value in DIRECTIONS.items()}
_LOG_DIRECTIONS = (("Inbound", "incoming"), ("Outbound", "outgoing"), ("Internal", "internal"))


@dataclass(frozen=True)
class Summary:
    """A call as one side tells it: its direction and the extensions that answered it (none: missed)."""

    direction: str  # incoming / outgoing / internal
    answered_by: frozenset[str]

    @property
    def answered(self) -> bool:
        return bool(self.answered_by)


@dataclass(frozen=True)
class Difference:
    field: str  # answered / answered_by / direction
    monitor: str
    call_log: str


class BadCallLog(ValueError):
    """The call log's rows cannot be compared (an unknown Direction)."""


def log_direction(rows: list[xapi.CallLogRow]) -> str:
    """incoming / outgoing / internal from the first row's Direction ("Inbound Queue" counts as inbound);
    raises BadCallLog on an unknown one."""
    direction = next((ours for theirs, ours in _LOG_DIRECTIONS if rows[0].direction.startswith(theirs)), "")
    if not direction:
        raise BadCallLog(f"unknown Direction {rows[0].direction!r}")
    return direction


def log_summary(rows: list[xapi.CallLogRow], extensions: set[str]) -> Summary:
    """The call as its log rows tell it. The first row's Direction is the call's (log_direction); an answered row was answered by its destination if that is an extension, else, on a call out
    (the far end answered), by its source extension. Raises BadCallLog on an unknown Direction."""
    direction = log_direction(rows)
    answered_by: set[str] = set()
    for row in rows:
        if not row.answered:
            continue
        if row.destination_dn in extensions:
            answered_by.add(row.destination_dn)
        elif row.direction.startswith("Outbound") and row.source_dn in extensions:
            answered_by.add(row.source_dn)
    return Summary(direction, frozenset(answered_by))


def compare(monitor: Summary, call_log: Summary) -> list[Difference]:
    """The fields the two disagree on; who answered is compared only when both say the call was answered."""
    out = []
    if monitor.direction != call_log.direction:
        out.append(Difference("direction", monitor.direction, call_log.direction))
    if monitor.answered != call_log.answered:
        out.append(Difference("answered", _yes_no(monitor.answered), _yes_no(call_log.answered)))
    elif monitor.answered_by != call_log.answered_by:
        out.append(Difference("answered_by", _dns(monitor.answered_by), _dns(call_log.answered_by)))
    return out


def _yes_no(flag: bool) -> str:
    return "answered" if flag else "missed"


def _dns(dns: frozenset[str]) -> str:
    return ",".join(sorted(dns)) or "-"


@dataclass
class _Watched:
    """What the monitor reported about one call so far."""

    chain: str
    first: float  # time of its first event
    whole: bool  # its first event was seen here (not a chain restored mid-way after a restart)
    direction: str = ""
    answered_by: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Check:
    callid: int
    chain: str
    reported: Summary
    start: float
    end: float
    due: float  # monotonic


class Reconciler:
    def __init__(self, pbx: PbxClient, facts: Facts, delay: float) -> None:
        self.pbx = pbx
        self.facts = facts
        self.delay = delay
        self.enabled = True
        self.queue: asyncio.Queue[_Check] = asyncio.Queue(QUEUE_SIZE)
        self._watched: dict[int, _Watched] = {}
        self.outcomes: Counter[str] = Counter()  # since start, as in RECONCILED (for `tcxhooks check`)
        self.disagreements: Counter[str] = Counter()  # by field, as in RECONCILE_DISAGREEMENTS

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        RECONCILED.labels(outcome).inc()

    def observe(self, items: list[Emitted], finished: list[int]) -> None:
        """Committed events and the calls that finished with them (called by the engine; never blocks)."""
        if not self.enabled:
            return
        for item in items:
            watched = self._watched.get(item.callid)
            if watched is None:
                watched = self._watched[item.callid] = _Watched(item.chain, item.occur, whole=item.seq == 1)
                while len(self._watched) > WATCHED:
                    del self._watched[next(iter(self._watched))]
            watched.direction = _DIRECTION_NAMES.get(item.event.direction, "")
            if (
                item.event.type == events_pb2.CALL_EVENT_TYPE_ENDED
                and item.event.finish_type == common_pb2.FINISH_TYPE_OK
            ):
                watched.answered_by.add(item.event.user)
        now = time.time()
        for callid in finished:
            watched = self._watched.pop(callid, None)
            if watched is None or not watched.whole or not watched.direction:
                continue
            check = _Check(
                callid,
                watched.chain,
                Summary(watched.direction, frozenset(watched.answered_by)),
                watched.first - BEFORE,
                now + AFTER,
                time.monotonic() + self.delay,
            )
            try:
                self.queue.put_nowait(check)
            except asyncio.QueueFull:
                self._count("dropped")

    async def run(self, stopping: asyncio.Event) -> None:
        workers = [asyncio.create_task(self._worker()) for _ in range(WORKERS)]
        await stopping.wait()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            # the checks waiting are due in order: a worker takes up to a read's worth, so a busy PBX gets
            # one call-log query per CALL_LOG_BATCH calls, not one per call
            batch = [await self.queue.get()]
            while len(batch) < xapi.CALL_LOG_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await asyncio.sleep(max(0.0, batch[-1].due - time.monotonic()))
            if self.enabled:
                await self._check(batch)

    async def _check(self, batch: list[_Check]) -> None:
        """Reads the calls' log rows (again for those without any, `delay` apart), compares and counts."""
        waiting = {check.callid: check for check in batch}
        start, end = min(c.start for c in batch), max(c.end for c in batch)
        for read in range(READS):
            if read:
                await asyncio.sleep(self.delay)
            try:
                found = await xapi.call_logs(self.pbx, list(waiting), start, end)
            except PbxHttpError as exc:
                if exc.status == 403:
                    self._forbidden()
                else:
                    self._errors(waiting.values(), exc)
                return
            except PbxError as exc:
                self._errors(waiting.values(), exc)
                return
            for callid in found.broken & waiting.keys():
                self._errors(
                    [waiting.pop(callid)],
                    PbxError(
                        "rows lacking StartTime, SourceDn, DestinationDn, Answered or Direction of the right type"
                    ),
                )
            for callid, rows in found.calls.items():
                if callid in waiting:
                    self._settle(waiting.pop(callid), rows)
            if not waiting:
                return
        for check in waiting.values():
            self._count("missing")
            log.info("call %s (%s): no call-log rows after %d reads", check.callid, check.chain, READS)

    def _settle(self, check: _Check, rows: list[xapi.CallLogRow]) -> None:
        try:
            differences = compare(check.reported, log_summary(rows, self.facts.extensions()))
        except BadCallLog as exc:
            self._errors([check], exc)
            return
        if not differences:
            self._count("agree")
            return
        self._count("disagree")
        for difference in differences:
            self.disagreements[difference.field] += 1
            RECONCILE_DISAGREEMENTS.labels(difference.field).inc()
        log.warning(
            "call %s (%s): the PBX call log disagrees with the monitor: %s",
            check.callid,
            check.chain,
            "; ".join(f"{d.field} monitor={d.monitor} call_log={d.call_log}" for d in differences),
        )

    def _forbidden(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self._watched.clear()
        self._count("forbidden")
        log.error(
            "post-call reconciliation is off for this run: the PBX refuses the call log (HTTP 403); "
            "it needs an API client with System Owner rights, or set [pbx] reconcile = false"
        )

    def _errors(self, checks: Iterable[_Check], exc: Exception) -> None:
        for check in checks:
            self._count("error")
            log.warning("call %s (%s): call log unusable, not reconciled: %s", check.callid, check.chain, exc)
