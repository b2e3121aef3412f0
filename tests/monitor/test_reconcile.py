"""Post-call reconciliation (docs/3cx.md §4.7): the comparison, the reconciler against a fake XAPI (retries, garbage,
403, a full queue), and the real monitor against the simulator's call log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tcxhooks.monitor import reconcile
from tcxhooks.monitor.callgraph import Emitted
from tcxhooks.monitor.errors import PbxHttpError
from tcxhooks.monitor.facts import Facts
from tcxhooks.monitor.pbx.xapi import CallLogRow
from tcxhooks.monitor.reconcile import Difference, Reconciler, Summary, compare, log_summary
from tcxhooks.v1 import common_pb2, events_pb2
from tests.helpers.services import wait_until

from .conftest import Monitor

EXTENSIONS = {"101", "102", "103"}
IN, OUT, INTERNAL = "incoming", "outgoing", "internal"


def row(source: str, destination: str, answered: bool, direction: str = "Inbound", start: float = 0.0) -> CallLogRow:
    return CallLogRow(start, source, destination, answered, direction)


def summary(direction: str, *answered_by: str) -> Summary:
    return Summary(direction, frozenset(answered_by))


@pytest.mark.parametrize(
    "rows,expected",
    [
        ([row("10000", "101", True)], summary(IN, "101")),
        (
            [row("10000", "800", False, "Inbound Queue"), row("10000", "101", False), row("10000", "102", True)],
            summary(IN, "102"),
        ),
        ([row("10000", "101", False)], summary(IN)),
        ([row("10000", "101", True), row("10000", "102", True)], summary(IN, "101", "102")),
        ([row("101", "10000", True, "Outbound")], summary(OUT, "101")),  # the far end answered 101's call
        ([row("101", "10000", False, "Outbound")], summary(OUT)),
        ([row("101", "102", True, "Internal")], summary(INTERNAL, "102")),
        ([row("10000", "101", True), row("101", "10000", True, "Outbound")], summary(IN, "101")),  # sent outside
        ([row("10000", "700", True)], summary(IN)),  # an IVR or queue row is no answer
    ],
)
def test_what_the_call_log_says(rows: list[CallLogRow], expected: Summary) -> None:
    assert log_summary(rows, EXTENSIONS) == expected


def test_an_unknown_direction_is_refused() -> None:
    with pytest.raises(reconcile.BadCallLog, match="Sideways"):
        log_summary([row("10000", "101", True, "Sideways")], EXTENSIONS)


@pytest.mark.parametrize(
    "monitor,call_log,differences",
    [
        (summary(IN, "101"), summary(IN, "101"), []),
        (summary(IN), summary(IN), []),
        (summary(IN, "101"), summary(IN), [Difference("answered", "answered", "missed")]),
        (summary(IN), summary(IN, "102"), [Difference("answered", "missed", "answered")]),
        (summary(IN, "101"), summary(IN, "102"), [Difference("answered_by", "101", "102")]),
        (summary(IN, "101", "102"), summary(IN, "102"), [Difference("answered_by", "101,102", "102")]),
        (
            summary(OUT, "101"),
            summary(IN),
            [Difference("direction", OUT, IN), Difference("answered", "answered", "missed")],
        ),
    ],
)
def test_comparison(monitor: Summary, call_log: Summary, differences: list[Difference]) -> None:
    assert compare(monitor, call_log) == differences


# --- the reconciler against a fake XAPI --------------------------------------------------------------------------
def outcomes() -> dict[str, float]:
    names = ("agree", "disagree", "missing", "error", "forbidden", "dropped")
    return {
        n: REGISTRY.get_sample_value("tcxhooks_monitor_reconciled_calls_total", {"outcome": n}) or 0.0 for n in names
    }


def counted(before: dict[str, float]) -> dict[str, float]:
    return {name: value - before[name] for name, value in outcomes().items() if value != before[name]}


class FakeXapi:
    """get_json answers call-log reads (`CallId eq 1 or CallId eq 2 …`) from `answer(call_id, read number)`: each
    call's rows, or an exception that fails the whole read. `queries` counts the reads."""

    def __init__(self, answer: Callable[[int, int], Any]) -> None:
        self.answer = answer
        self.reads: dict[int, int] = {}
        self.queries = 0

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        assert "GetCallLogData(" in path and "hidePcalls=true" in path and params is not None
        self.queries += 1
        rows: list[Any] = []
        for term in params["$filter"].split(" or "):
            call_id = int(term.removeprefix("CallId eq "))
            self.reads[call_id] = self.reads.get(call_id, 0) + 1
            result = self.answer(call_id, self.reads[call_id])
            if isinstance(result, Exception):
                raise result
            rows += result
        return {"value": rows}


def log_row(call_id: int, destination: str, answered: bool, **extra: Any) -> dict[str, Any]:
    return {
        "CallId": call_id,
        "StartTime": "2025-11-25T18:45:00Z",
        "SourceDn": "10000",
        "SourceCallerId": "7916",
        "DestinationDn": destination,
        "Answered": answered,
        "Direction": "Inbound",
        **extra,
    }


def ended(callid: int, user: str, finish: int, seq: int = 2) -> Emitted:
    event = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ENDED, direction=common_pb2.DIRECTION_INCOMING, user=user, finish_type=finish
    )
    return Emitted(f"251125184500_{callid}", f"e{callid}", time.time(), event, callid=callid, seq=seq)


def ringing(callid: int, user: str) -> Emitted:
    event = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_RINGING, direction=common_pb2.DIRECTION_INCOMING, user=user
    )
    return Emitted(f"251125184500_{callid}", f"r{callid}", time.time(), event, callid=callid, seq=1)


async def reconciled(
    answer: Callable[[int, int], Any],
    *calls: tuple[int, bool],
    wait: float = 1.0,
) -> tuple[Reconciler, FakeXapi]:
    """Calls (callid, answered by 101?) reported and finished, then the reconciler runs for `wait` seconds."""
    fake = FakeXapi(answer)
    reconciler = Reconciler(fake, Facts(dn_types={e: "Wextension" for e in EXTENSIONS}), delay=0.05)  # type: ignore[arg-type]
    for callid, answered in calls:
        finish = common_pb2.FINISH_TYPE_OK if answered else common_pb2.FINISH_TYPE_MISSED
        reconciler.observe([ringing(callid, "101"), ended(callid, "101", finish)], [callid])
    stopping = asyncio.Event()
    task = asyncio.create_task(reconciler.run(stopping))
    await asyncio.sleep(wait)
    stopping.set()
    await task
    return reconciler, fake


async def test_agree_disagree_late_rows_and_missing() -> None:
    def answer(call_id: int, read: int) -> Any:
        if call_id == 3:  # written late: there on the second read
            return [log_row(3, "101", True)] if read == 2 else []
        if call_id == 4:  # never written
            return []
        return [log_row(call_id, "101", call_id == 1), log_row(999, "102", True)]  # another call's row is ignored

    before = outcomes()
    _, fake = await reconciled(answer, (1, True), (2, True), (3, True), (4, False), wait=0.6)
    assert counted(before) == {"agree": 2, "disagree": 1, "missing": 1}
    assert fake.reads == {1: 1, 2: 1, 3: 2, 4: 3}
    assert fake.queries == 3  # the four calls in one read, then the two still without rows, then the last one


async def test_a_busy_pbx_gets_one_query_per_batch_of_calls() -> None:
    before = outcomes()
    calls = [(n, True) for n in range(1, 46)]
    _, fake = await reconciled(lambda call_id, read: [log_row(call_id, "101", True)], *calls, wait=0.3)
    assert counted(before) == {"agree": 45}
    assert fake.queries == 3  # 20 + 20 + 5


def malformed_rows() -> float:
    return REGISTRY.get_sample_value("tcxhooks_monitor_malformed_messages_total", {"reason": "call_log_row"}) or 0


async def test_garbage_rows_and_errors_are_counted_never_fatal() -> None:
    garbage = [
        log_row(1, "101", "yes"),
        {**log_row(2, "101", True), "StartTime": None},
        {**log_row(3, "101", True), "CallId": "3"},
    ]

    def answer(call_id: int, read: int) -> Any:
        if call_id == 6:
            return [log_row(6, "101", True, Direction="Sideways")]
        return [g for g in garbage if isinstance(g, dict) and g["CallId"] in (call_id, str(call_id))]

    before, malformed = outcomes(), malformed_rows()
    reconciler, _ = await reconciled(answer, (1, True), (2, True), (3, True), (6, True), wait=0.3)
    # call 3's only row names no call it belongs to: counted at each of its three reads, the call has no rows
    assert counted(before) == {"error": 3, "missing": 1}
    assert malformed_rows() - malformed == 2 + reconcile.READS
    assert reconciler.enabled

    before = outcomes()
    reconciler, _ = await reconciled(
        lambda call_id, read: PbxHttpError(500, "GET …: HTTP 500"), (7, True), (8, True), wait=0.3
    )
    assert counted(before) == {"error": 2}  # a failed read fails the calls it asked about, and no more
    assert reconciler.enabled


async def test_forbidden_turns_the_check_off_once(caplog: pytest.LogCaptureFixture) -> None:
    before = outcomes()
    reconciler, fake = await reconciled(
        lambda call_id, read: PbxHttpError(403, "GET …: HTTP 403"), *[(n, True) for n in range(1, 9)], wait=0.3
    )
    assert counted(before) == {"forbidden": 1}
    assert not reconciler.enabled and fake.queries == 1  # the eight calls were one read
    assert sum("System Owner" in r.getMessage() for r in caplog.records) == 1
    reconciler.observe([ringing(20, "101")], [20])
    assert reconciler.queue.empty()


async def test_a_full_queue_drops_checks_not_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "QUEUE_SIZE", 2)
    before = outcomes()
    reconciler = Reconciler(FakeXapi(lambda c, r: []), Facts(), delay=60)  # type: ignore[arg-type]
    items = [ringing(n, "101") for n in range(5)]
    reconciler.observe(items, [item.callid for item in items])
    assert counted(before) == {"dropped": 3} and reconciler.queue.qsize() == 2


def test_calls_restored_mid_way_are_not_checked() -> None:
    reconciler = Reconciler(FakeXapi(lambda c, r: []), Facts(), delay=60)  # type: ignore[arg-type]
    reconciler.observe([ended(7, "101", common_pb2.FINISH_TYPE_OK, seq=4)], [7])  # its first events went before
    assert reconciler.queue.empty()


# --- the real monitor against the simulator ----------------------------------------------------------------------
FAST = {"ring_seconds": 0.3, "talk_seconds": 0.3}
QUICK_CHECK = {"pbx": {"reconcile_delay": "0.2"}}


def wait_for(monitor: Monitor, sample: str, value: float, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while monitor.metric(sample) < value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{sample} stayed at {monitor.metric(sample)}, wanted {value}\n{monitor.logs()}")
        time.sleep(0.1)


def outcome(monitor: Monitor, name: str) -> float:
    return monitor.metric(f'tcxhooks_monitor_reconciled_calls_total{{outcome="{name}"}}')


@pytest.mark.parametrize("monitor_stack", [QUICK_CHECK], indirect=True)
def test_answered_and_missed_calls_agree_and_a_wrong_log_is_reported(monitor_stack: Monitor) -> None:
    monitor_stack.pbx.play("inbound_answered", ext="101", **FAST)
    monitor_stack.pbx.play("caller_hangs_up_ringing", ext="102", **FAST)
    wrong = monitor_stack.pbx.play("inbound_answered", ext="103", falsify_log="answered_by", **FAST)["call_number"]
    wait_for(monitor_stack, 'tcxhooks_monitor_reconciled_calls_total{outcome="agree"}', 2)
    wait_for(monitor_stack, 'tcxhooks_monitor_reconciled_calls_total{outcome="disagree"}', 1)
    assert monitor_stack.metric('tcxhooks_monitor_reconcile_disagreements_total{field="answered_by"}') == 1
    assert [outcome(monitor_stack, n) for n in ("agree", "disagree", "missing", "error")] == [2, 1, 0, 0]
    # counted just before it is logged: wait for the line
    wait_until(lambda: "call log disagrees" in monitor_stack.logs(), timeout=15, what="the disagreement logged")
    warning = next(line for line in monitor_stack.logs().splitlines() if "call log disagrees" in line)
    assert "WARNING" in warning and f"call {wrong} " in warning
    assert "answered_by monitor=103 call_log=101" in warning  # the simulator named the first free extension
    assert monitor_stack.pbx.url not in warning and "79161234567" not in warning


@pytest.mark.parametrize("monitor_stack", [QUICK_CHECK], indirect=True)
def test_a_forbidden_call_log_turns_the_check_off(monitor_stack: Monitor) -> None:
    httpx.post(
        f"{monitor_stack.pbx.url}/sim/fail",
        json={"prefix": "/xapi/v1/ReportCallLogData", "status": 403, "count": 1000},
        timeout=5,
    ).raise_for_status()
    monitor_stack.pbx.play("inbound_answered", ext="101", **FAST)
    monitor_stack.pbx.play("inbound_answered", ext="102", **FAST)
    wait_for(monitor_stack, 'tcxhooks_monitor_reconciled_calls_total{outcome="forbidden"}', 1)
    monitor_stack.bodies(6)  # the webhooks went out all the same
    time.sleep(0.5)
    assert outcome(monitor_stack, "forbidden") == 1 and outcome(monitor_stack, "error") == 0
    assert monitor_stack.logs().count("System Owner") == 1
