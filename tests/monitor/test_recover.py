"""Outage recovery: call-log rows → the ended events the monitor would have sent, and the real monitor against the
simulator: calls that rang and ended while the Call Control WebSocket was down (or the monitor stopped) reach the
CRM once, calls it saw are not sent again, a 403 turns recovery off."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
import pytest

from tcxhooks.monitor.facts import Facts, Rule
from tcxhooks.monitor.pbx.xapi import CallLogRow, parse_duration
from tcxhooks.monitor.reconcile import BadCallLog
from tcxhooks.monitor.recovered import events_of
from tcxhooks.v1 import common_pb2
from tests.helpers.services import stop

from .conftest import Monitor

FACTS = Facts(
    dn_types={
        "101": "Wextension",
        "102": "Wextension",
        "103": "Wextension",
        "800": "Wqueue",
        "900": "Wringgroup",
        "700": "Wivr",
    },
    trunk_dids={"10000": ["74951234567"]},
    rules=[Rule("Main line", "74951234567")],
)
T0 = 1_764_096_300.0  # 2025-11-25 18:45:00 UTC
CALLER, CALLEE = "79161234567", "79031112233"


def row(
    source: str,
    destination: str,
    answered: bool,
    ring: float,
    talk: float = 0.0,
    at: float = 0.0,
    direction: str = "Inbound",
    ringing: str | None = None,
) -> CallLogRow:
    source_id = CALLER if source == "10000" else source
    destination_id = CALLEE if destination == "10000" else destination
    return CallLogRow(
        T0 + at,
        source,
        destination,
        answered,
        direction,
        source_id,
        destination_id,
        parse_duration(ringing) if ringing is not None else ring,
        talk,
        "Answered" if answered else "",
    )


def stamp(moment: float) -> str:
    return time.strftime("%y%m%d%H%M%S", time.gmtime(moment))


def ended(rows: list[CallLogRow]) -> list[tuple[object, ...]]:
    out = []
    for item in events_of(698, rows, FACTS, stamp):
        e = item.event
        out.append(
            (
                item.event_id,
                e.call_id,
                e.user,
                common_pb2.FinishType.Name(e.finish_type),
                e.transfer,
                e.duration_seconds,
                e.ring_seconds,
                common_pb2.Direction.Name(e.direction),
                e.caller_id,
                e.did,
                e.queue,
                round(item.occur - T0, 1),
                item.needs_did,
                item.needs_callback,
                item.leg is not None,
            )
        )
    return out


CHAIN = "251125184500_698"
# 101 answered after 2 s of ringing and talked 10 s, then passed the caller on (to 102, or out of the PBX)
PASSED_ON_BY_101 = (
    f"{CHAIN}-1/recovered/ended",
    f"{CHAIN}-1",
    "101",
    "FINISH_TYPE_OK",
    True,
    10,
    2,
    "DIRECTION_INCOMING",
    CALLER,
    "74951234567",
    "",
    12.0,
    False,
    False,
    True,
)


@pytest.mark.parametrize(
    "rows,expected",
    [
        (
            [row("10000", "101", True, 3, 65)],  # inbound answered
            [
                (
                    f"{CHAIN}-1/recovered/ended",
                    f"{CHAIN}-1",
                    "101",
                    "FINISH_TYPE_OK",
                    False,
                    65,
                    3,
                    "DIRECTION_INCOMING",
                    CALLER,
                    "74951234567",
                    "",
                    68.0,
                    False,
                    False,
                    True,
                )
            ],
        ),
        (
            [
                row("10000", "800", False, 20, direction="Inbound Queue"),
                row("10000", "101", False, 8, at=2),
                row("10000", "102", False, 8, at=11),
            ],  # missed in a queue: the queue, the whole wait
            [
                (
                    f"{CHAIN}-0/recovered/ended",
                    f"{CHAIN}-0",
                    "800",
                    "FINISH_TYPE_MISSED",
                    False,
                    0,
                    20,
                    "DIRECTION_INCOMING",
                    CALLER,
                    "74951234567",
                    "800",
                    20.0,
                    False,
                    True,
                    False,
                )
            ],
        ),
        (
            [row("10000", "101", False, 4), row("10000", "102", False, 5, at=1)],  # missed: the last extension
            [
                (
                    f"{CHAIN}-0/recovered/ended",
                    f"{CHAIN}-0",
                    "102",
                    "FINISH_TYPE_MISSED",
                    False,
                    0,
                    6,
                    "DIRECTION_INCOMING",
                    CALLER,
                    "74951234567",
                    "",
                    6.0,
                    False,
                    False,
                    False,
                )
            ],
        ),
        (
            [row("10000", "101", True, 2, 10), row("10000", "102", True, 3, 20, at=12)],  # blind transfer: two legs
            [
                PASSED_ON_BY_101,
                (
                    f"{CHAIN}-2/recovered/ended",
                    f"{CHAIN}-2",
                    "102",
                    "FINISH_TYPE_OK",
                    False,
                    20,
                    3,
                    "DIRECTION_INCOMING",
                    CALLER,
                    "74951234567",
                    "",
                    35.0,
                    False,
                    False,
                    True,
                ),
            ],
        ),
        (
            [
                row("10000", "101", True, 2, 10),
                row("101", "10000", True, 4, 30, at=12, direction="Outbound"),
            ],  # sent out
            [PASSED_ON_BY_101],
        ),
        (
            [row("101", "10000", True, 5, 42.6, direction="Outbound", ringing="PT5S")],  # outbound answered
            [
                (
                    f"{CHAIN}-1/recovered/ended",
                    f"{CHAIN}-1",
                    "101",
                    "FINISH_TYPE_OK",
                    False,
                    43,
                    5,
                    "DIRECTION_OUTGOING",
                    CALLEE,
                    "",
                    "",
                    47.6,
                    False,
                    False,
                    True,
                )
            ],
        ),
        (
            [row("101", "10000", False, 9, direction="Outbound")],  # outbound not answered: the caller's extension
            [
                (
                    f"{CHAIN}-0/recovered/ended",
                    f"{CHAIN}-0",
                    "101",
                    "FINISH_TYPE_MISSED",
                    False,
                    0,
                    9,
                    "DIRECTION_OUTGOING",
                    CALLEE,
                    "",
                    "",
                    9.0,
                    False,
                    False,
                    False,
                )
            ],
        ),
        (
            [row("101", "102", True, 1, 7, direction="Internal")],
            [
                (
                    f"{CHAIN}-1/recovered/ended",
                    f"{CHAIN}-1",
                    "102",
                    "FINISH_TYPE_OK",
                    False,
                    7,
                    1,
                    "DIRECTION_INTERNAL",
                    "101",
                    "",
                    "",
                    8.0,
                    False,
                    False,
                    True,
                )
            ],
        ),
    ],
)
def test_rows_give_the_ended_events_the_monitor_would_have_sent(
    rows: list[CallLogRow], expected: list[tuple[object, ...]]
) -> None:
    assert ended(rows) == expected


def test_recovered_events_carry_the_call_times_and_the_directory_names() -> None:
    facts = Facts(dn_types=FACTS.dn_types, trunk_dids=FACTS.trunk_dids, names={"101": "Ivan Petrov", "800": "Sales"})
    [answered] = events_of(698, [row("10000", "101", True, 3, 65, at=1)], facts, stamp)
    e = answered.event
    assert (e.started_time.seconds, e.answered_time.seconds, e.ended_time.seconds) == (T0 + 1, T0 + 4, T0 + 69)
    assert (e.user_name, e.queue, e.queue_name) == ("Ivan Petrov", "", "")
    assert e.callback_state == common_pb2.CALLBACK_STATE_UNSPECIFIED
    [missed] = events_of(698, [row("10000", "800", False, 20, direction="Inbound Queue")], facts, stamp)
    e = missed.event
    assert (e.user_name, e.queue_name, e.HasField("answered_time"), e.ended_time.seconds) == (
        "Sales",
        "Sales",
        False,
        T0 + 20,
    )
    [internal] = events_of(698, [row("101", "102", True, 1, 7, direction="Internal")], facts, stamp)
    assert internal.event.caller_name == "Ivan Petrov"


def test_recovered_transfers_name_where_the_call_went_and_where_it_came_from() -> None:
    facts = Facts(
        dn_types={**FACTS.dn_types, "10000": "Wexternalline"},
        trunk_dids=FACTS.trunk_dids,
        names={"101": "Ivan Petrov", "102": "Maria Sidorova", "800": "Sales"},
    )
    blind = events_of(698, [row("10000", "101", True, 2, 10), row("10000", "102", True, 3, 20, at=12)], facts, stamp)
    assert [
        (
            e.event.user,
            e.event.transferred_to,
            e.event.transferred_to_name,
            e.event.transferred_from,
            e.event.transferred_from_name,
        )
        for e in blind
    ] == [("101", "102", "Maria Sidorova", "", ""), ("102", "", "", "101", "Ivan Petrov")]
    queue = events_of(
        698,
        [
            row("10000", "101", True, 2, 10),
            row("10000", "800", False, 3, at=12),
            row("10000", "102", True, 3, 20, at=13),
        ],
        facts,
        stamp,
    )
    assert [(e.event.transferred_to, e.event.transferred_from) for e in queue] == [("800", ""), ("", "101")]
    out = events_of(
        698,
        [
            row("10000", "101", True, 2, 10),
            replace(row("101", "10000", True, 4, 30, at=12, direction="Outbound"), destination_name="Supplier Co"),
        ],
        facts,
        stamp,
    )
    assert [(e.event.transferred_to, e.event.transferred_to_name) for e in out] == [(CALLEE, "Supplier Co")]


@pytest.mark.parametrize(
    ("first", "name"),
    [
        (replace(row("10000", "101", True, 1, 5), source_name="Acme Ltd"), "Acme Ltd"),
        (replace(row("10000", "101", True, 1, 5), source_name=CALLER), ""),  # the PBX shows only the number
        (replace(row("101", "10000", True, 1, 5, direction="Outbound"), destination_name="Supplier Co"), "Supplier Co"),
    ],
)
def test_recovered_ends_name_the_external_party_as_the_call_log_does(first: CallLogRow, name: str) -> None:
    [end] = events_of(698, [first], FACTS, stamp)
    assert end.event.caller_name == name


def test_an_unknown_did_is_left_to_the_enrichment() -> None:
    facts = Facts(dn_types=FACTS.dn_types, trunk_dids={"10000": ["74951234567", "74957654321"]})
    [item] = events_of(698, [row("10000", "101", True, 3, 5)], facts, stamp)
    assert item.event.did == "" and item.needs_did


@pytest.mark.parametrize(
    "rows,error",
    [
        ([row("10000", "101", True, 3, 5, direction="Sideways")], "Sideways"),
        ([row("10000", "101", True, 3, 5, ringing="00:00:03")], "RingingDuration"),
    ],
)
def test_rows_that_cannot_be_read_are_refused(rows: list[CallLogRow], error: str) -> None:
    with pytest.raises(BadCallLog, match=error):
        events_of(698, rows, FACTS, stamp)


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("PT8M42S", 522),
        ("PT30.7S", 30.7),
        ("PT1H2M3S", 3723),
        ("PT0S", 0),
        ("PT", None),
        ("00:00:05", None),
        (5, None),
        ("", None),
    ],
)
def test_iso_durations(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


# --- the real monitor against the simulator ----------------------------------------------------------------------
QUICK = [{"pbx": {"reconcile_delay": "0.2"}}]
FAST = {"ring_seconds": 0.2, "talk_seconds": 0.3, "gap": 0.02}


def fail(monitor: Monitor, prefix: str, status: int, count: int) -> None:
    httpx.post(
        f"{monitor.pbx.url}/sim/fail", json={"prefix": prefix, "status": status, "count": count}, timeout=5
    ).raise_for_status()


def recovered(monitor: Monitor, outcome: str) -> float:
    return monitor.metric(f'tcxhooks_monitor_recovered_calls_total{{outcome="{outcome}"}}')


def wait_until(what: str, check: object, monitor: Monitor, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen\n{monitor.logs()}")
        time.sleep(0.05)


def down(monitor: Monitor) -> None:
    wait_until("the WebSocket going down", lambda: monitor.metric("tcxhooks_monitor_ws_connected") == 0, monitor)


def by_id(bodies: list[list[tuple[str, str]]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(dict(b)["event"], dict(b)["id"].split("_", 1)[1]): dict(b) for b in bodies}


@pytest.mark.parametrize("monitor_stack", QUICK, indirect=True)
def test_calls_that_rang_and_ended_during_an_outage_reach_the_crm_once(monitor_stack: Monitor) -> None:
    pbx = monitor_stack.pbx
    fail(monitor_stack, "/callcontrol/ws", 503, 1000)  # the socket stays down until the faults are cleared
    alive = pbx.play("inbound_answered", ext="102", ring_seconds=0.3, talk_seconds=0.6, drop_ws_after=[2])
    down(monitor_stack)
    answered = pbx.play("inbound_answered", ext="101", **FAST)["call_number"]
    missed = pbx.play("caller_hangs_up_ringing", ext="103", ring_seconds=0.3)["call_number"]
    outgoing = pbx.play("outbound_answered", ext="104", **FAST)["call_number"]
    for number in (alive["call_number"], answered, missed, outgoing):
        pbx.wait_done(number)
    fail(monitor_stack, "/callcontrol/ws", 503, 0)
    bodies = by_id(monitor_stack.bodies(6))
    n = alive["call_number"]
    assert set(bodies) == {
        ("ringing", f"{n}-0"),
        ("hangupincoming", f"{n}-1"),
        ("incoming", f"{n}-1"),
        ("incoming", f"{answered}-1"),
        ("incoming", f"{missed}-0"),
        ("outgoing", f"{outgoing}-1"),
    }
    ok = bodies[("incoming", f"{answered}-1")]
    assert (ok["callerid"], ok["user"], ok["finishtype"], ok["transfer"], ok["did"], ok["didname"]) == (
        "79161234567",
        "101",
        "Ok",
        "false",
        "74951234567",
        "Main line",
    )
    assert ok["duration"] in ("0", "1") and ok["title"].startswith("Main line: talk 0:00:0")
    gone = bodies[("incoming", f"{missed}-0")]
    assert (gone["user"], gone["finishtype"], gone["duration"]) == ("103", "Missed", "0")
    out = bodies[("outgoing", f"{outgoing}-1")]
    assert (out["callerid"], out["user"], out["finishtype"]) == ("79031112233", "104", "Ok")
    # the webhooks may arrive before the monitor has counted what it published: wait for the count
    wait_until(
        "the recovery counted",
        lambda: [recovered(monitor_stack, o) for o in ("published", "known", "error", "forbidden")] == [3, 1, 0, 0],
        monitor_stack,
    )
    # Another drop: the next window overlaps the last one, and every call in it is known by now.
    pbx.drop()
    wait_until("a second recovery", lambda: recovered(monitor_stack, "known") == 5, monitor_stack)
    time.sleep(0.5)
    assert recovered(monitor_stack, "published") == 3 and len(monitor_stack.crm.requests) == 6


@pytest.mark.parametrize("monitor_stack", QUICK, indirect=True)
def test_rows_the_pbx_writes_late_are_caught_by_the_second_read(monitor_stack: Monitor) -> None:
    pbx = monitor_stack.pbx
    hold = f"{pbx.url}/sim/calllog"
    httpx.post(hold, json={"hold": True}, timeout=5).raise_for_status()  # the PBX is slow to write its log
    fail(monitor_stack, "/callcontrol/ws", 503, 1000)
    pbx.drop()
    down(monitor_stack)
    missed = pbx.play("caller_hangs_up_ringing", ext="102", ring_seconds=0.3)["call_number"]
    pbx.wait_done(missed)
    fail(monitor_stack, "/callcontrol/ws", 503, 0)
    wait_until("the first read", lambda: "no new calls in the call log" in monitor_stack.logs(), monitor_stack)
    assert not monitor_stack.crm.requests
    httpx.post(hold, json={"hold": False}, timeout=5).raise_for_status()
    (body,) = monitor_stack.bodies(1)
    assert (dict(body)["event"], dict(body)["id"].split("_", 1)[1], dict(body)["finishtype"]) == (
        "incoming",
        f"{missed}-0",
        "Missed",
    )
    wait_until("the second read logged", lambda: "(second read): 1 published" in monitor_stack.logs(), monitor_stack)
    assert recovered(monitor_stack, "published") == 1


@pytest.mark.parametrize("monitor_stack", QUICK, indirect=True)
def test_a_call_lost_in_a_sequence_gap_is_recovered_with_the_socket_up(monitor_stack: Monitor) -> None:
    pbx = monitor_stack.pbx
    before = pbx.play("inbound_answered", ext="103", **FAST)["call_number"]  # the socket's first frames arrive
    monitor_stack.bodies(3)
    connects = monitor_stack.metric('tcxhooks_monitor_ws_reconnects_total{outcome="connected"}')
    lose = f"{pbx.url}/sim/ws/lose"
    assert httpx.post(lose, json={"lose": True}, timeout=5).json() == {"sockets": 1}  # frames numbered, never sent
    missed = pbx.play("caller_hangs_up_ringing", ext="102", ring_seconds=0.3)["call_number"]
    pbx.wait_done(missed)
    httpx.post(lose, json={"lose": False}, timeout=5).raise_for_status()
    seen = pbx.play("inbound_answered", ext="101", **FAST)["call_number"]  # its first frame shows the gap
    bodies = by_id(monitor_stack.bodies(7))
    assert set(bodies) == {
        (event, f"{n}-{link}")
        for n in (before, seen)
        for event, link in (("ringing", 0), ("hangupincoming", 1), ("incoming", 1))
    } | {("incoming", f"{missed}-0")}
    gone = bodies[("incoming", f"{missed}-0")]
    assert (gone["user"], gone["finishtype"]) == ("102", "Missed")
    assert monitor_stack.metric('tcxhooks_monitor_malformed_messages_total{reason="sequence_gap"}') == 1
    assert monitor_stack.metric('tcxhooks_monitor_ws_reconnects_total{outcome="connected"}') == connects
    wait_until("the recovery", lambda: recovered(monitor_stack, "published") == 1, monitor_stack)


@pytest.mark.parametrize("monitor_stack", QUICK, indirect=True)
def test_a_call_that_came_and_went_while_the_monitor_was_stopped_is_recovered(monitor_stack: Monitor) -> None:
    pbx = monitor_stack.pbx
    seen = pbx.play("inbound_answered", ext="101", **FAST)["call_number"]
    monitor_stack.bodies(3)
    stop(monitor_stack.procs.pop("monitor"))
    missed = pbx.play("caller_hangs_up_ringing", ext="102", ring_seconds=0.3)["call_number"]
    pbx.wait_done(missed)
    monitor_stack.start("monitor")
    bodies = monitor_stack.bodies(4)
    assert [(dict(b)["event"], dict(b)["id"].split("_", 1)[1], dict(b)["finishtype"]) for b in bodies[3:]] == [
        ("incoming", f"{missed}-0", "Missed")
    ]
    wait_until("the recovery", lambda: recovered(monitor_stack, "known") == 1, monitor_stack)
    assert recovered(monitor_stack, "published") == 1 and f"_{seen}-" in dict(bodies[0])["id"]
    time.sleep(0.3)
    assert len(monitor_stack.crm.requests) == 4


@pytest.mark.parametrize("monitor_stack", QUICK, indirect=True)
def test_a_forbidden_call_log_turns_recovery_off(monitor_stack: Monitor) -> None:
    fail(monitor_stack, "/xapi/v1/ReportCallLogData", 403, 1000)
    fail(monitor_stack, "/callcontrol/ws", 503, 1)
    monitor_stack.pbx.drop()
    down(monitor_stack)
    monitor_stack.pbx.wait_done(
        monitor_stack.pbx.play("caller_hangs_up_ringing", ext="101", ring_seconds=0.2)["call_number"]
    )
    wait_until("a 403", lambda: recovered(monitor_stack, "forbidden") == 1, monitor_stack)
    monitor_stack.pbx.drop()
    time.sleep(1.0)
    assert recovered(monitor_stack, "forbidden") == 1 and recovered(monitor_stack, "published") == 0
    assert monitor_stack.logs().count("outage recovery is off") == 1 and not monitor_stack.crm.requests
