"""The call graph on recorded simulator sequences (data/*.jsonl): exact bodies, lost messages, restarts, options."""

from __future__ import annotations

import pytest

from tcxhooks.monitor.callgraph import CallGraph, Chain, Settings
from tcxhooks.monitor.facts import Facts, Rule, same_number
from tcxhooks.monitor.participant import Participant
from tcxhooks.monitor.progress import outside_party
from tcxhooks.simulator.scenarios import build

from .expected import EXPECTED, check
from .replay import load, replay
from .synth import lines_of

OUTBOUND = {"outbound_answered", "outbound_unanswered"}
SCENARIOS = sorted(EXPECTED)


def one_call(bodies: dict[str, list[list[tuple[str, str]]]], scenario: str) -> tuple[str, list[list[tuple[str, str]]]]:
    assert len(bodies) == 1, f"{scenario}: {list(bodies)}"
    return next(iter(bodies.items()))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_scenario_gives_the_exact_bodies(scenario: str) -> None:
    callbacks = 1 if scenario == "queue_abandoned_callback" else 0
    prefix, got = one_call(replay(load(scenario), callbacks=callbacks), scenario)
    check(scenario, prefix, got, outbound=scenario in OUTBOUND)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_lost_message_then_resync_changes_nothing(scenario: str) -> None:
    lines = load(scenario)
    baseline = replay(lines)
    for index in range(1, len(lines)):
        assert replay(lines, drop=index) == baseline, f"{scenario}: message {index} lost"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_restart_at_any_step_keeps_ids_and_events(scenario: str) -> None:
    lines = load(scenario)
    baseline = replay(lines)
    for index in range(len(lines)):
        assert replay(lines, restart=index) == baseline, f"{scenario}: restarted after message {index}"


def test_ringing_stopped_is_opt_in() -> None:
    _, got = one_call(replay(load("queue_answered"), Settings(grace=1.0, timezone="UTC")), "queue_answered")
    assert [dict(b)["event"] for b in got] == ["ringing", "ringing", "ringing", "hangupincoming", "incoming"]


def test_internal_calls_are_reported_only_when_asked() -> None:
    bodies = replay(load("attended_transfer"), Settings(grace=1.0, timezone="UTC", internal_calls=True))
    assert len(bodies) == 2
    consult = next(b for prefix, b in bodies.items() if not any(dict(x)["callerid"] == "79161234567" for x in b))
    assert [(dict(b)["event"], dict(b)["user"], dict(b)["callerid"]) for b in consult] == [
        ("ringing", "102", "101"),
        ("hangupoutgoing", "102", "101"),
        ("outgoing", "102", "101"),
    ]
    assert dict(consult[-1])["transfer"] == "true"  # 102's consultation leg moved into the caller's call


def test_ids_use_the_configured_time_zone() -> None:
    utc = replay(load("inbound_answered"))
    moscow = replay(load("inbound_answered"), Settings(grace=1.0, ringing_stopped=True, timezone="Europe/Moscow"))
    (u,), (m,) = utc.keys(), moscow.keys()
    assert u.split("_")[1] == m.split("_")[1] and int(m[6:8]) == (int(u[6:8]) + 3) % 24


def test_duplicates_unknown_removes_and_late_messages_are_counted_not_applied() -> None:
    graph = CallGraph(Settings(grace=1.0, timezone="UTC"), Facts())
    part = Participant.parse(
        {
            "id": 1,
            "dn": "101",
            "status": "Ringing",
            "callid": 5,
            "party_dn_type": "Wexternalline",
            "party_caller_id": "79161234567",
            "party_dn": "10000",
        }
    )
    graph.upsert(part, 10.0)
    graph.upsert(part, 10.5)
    graph.remove("101", 99, 11.0)
    graph.remove("101", 1, 12.0)
    for callid in graph.due(14.0):
        graph.decide(callid, 14.0)
    graph.upsert(part, 15.0)  # a stale message of a finished call
    assert [reason for reason, _ in graph.anomalies] == ["duplicate", "unknown_remove", "late_message"]
    assert [e.event_id.split("/")[1] for e in graph.drain()] == ["ringing", "ended"]


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"id": 1},
        {"id": "x", "dn": "1", "status": "Ringing", "callid": 1},
        {"id": 1, "dn": "1", "status": ["Ringing"], "callid": 1},
        {"id": 1, "dn": "1", "status": "Ringing", "callid": True},
        {"id": 1, "dn": "1", "status": "Ringing", "callid": 2, "party_dn": {"a": 1}},
    ],
)
def test_malformed_participants_are_rejected_with_a_reason(raw: object) -> None:
    with pytest.raises(ValueError):
        Participant.parse(raw)


def test_did_rules_and_number_spellings() -> None:
    facts = Facts(
        trunk_dids={"10000": ["74951234567"], "10001": ["1", "2"]},
        rules=[Rule("Masked", "7495*"), Rule("Main line", "+7 (495) 123-45-67")],
    )
    assert facts.trunk_did("10000") == "74951234567" and facts.trunk_did("10001") == ""
    assert facts.rule_name("74951234567") == "Main line"
    assert facts.rule_name("74959999999") == "Masked"
    assert facts.rule_name("78120000000") == ""
    assert same_number("+79161234567", "89161234567") is False and same_number("+79161234567", "79161234567")


def ringing_at(graph: CallGraph, pid: int, dn: str, now: float, status: str = "Ringing") -> Participant:
    part = Participant.parse(
        {
            "id": pid,
            "dn": dn,
            "status": status,
            "callid": 7,
            "party_dn": "10000",
            "party_dn_type": "Wexternalline",
            "party_caller_id": "79161234567",
        }
    )
    graph.upsert(part, now)
    return part


def test_an_unknown_status_is_counted_and_the_leg_keeps_its_state() -> None:
    graph = CallGraph(Settings(grace=1.0, timezone="UTC"), Facts())
    ringing_at(graph, 1, "101", 10.0)
    ringing_at(graph, 1, "101", 10.5, status="Exploded")  # neither an answer nor an end
    ringing_at(graph, 2, "102", 10.6, status="Held")  # a leg first seen with it waits for a known state
    assert [reason for reason, _ in graph.anomalies] == ["unknown_status", "unknown_status"]
    assert graph.chains[7].legs["101/1"].status == "Ringing" and "102/2" not in graph.chains[7].legs
    ringing_at(graph, 1, "101", 11.0, status="Connected")
    graph.remove("101", 1, 12.0)
    graph.settle(12.0, listed=set())
    assert [e.event_id.split("/")[1] for e in graph.drain()] == ["ringing", "answered", "ended"]


class Failing(Facts):
    """Facts that break on DN 666 (a bug met on one participant)."""

    def user_type(self, dn: str) -> str:
        if dn == "666":
            raise RuntimeError("broken")
        return super().user_type(dn)


def test_a_failure_on_one_participant_stays_with_that_participant() -> None:
    graph = CallGraph(Settings(grace=1.0, timezone="UTC"), Failing())
    parts = [
        Participant(
            id=i,
            dn=dn,
            status="Ringing",
            callid=i,
            party_dn="10000",
            party_dn_type="Wexternalline",
            party_caller_id="79161234567",
        )
        for i, dn in ((1, "666"), (2, "101"))
    ]
    graph.reconcile(parts, 10.0)
    assert [(reason, detail.split(":")[0]) for reason, detail in graph.anomalies] == [("participant_failed", "666/1")]
    assert [(e.event.user, e.event_id.split("/")[1]) for e in graph.drain()] == [("101", "ringing")]
    graph.upsert(parts[0], 11.0)  # met again: counted again, nothing else happens
    assert len(graph.anomalies) == 2 and list(graph.chains) == [2]


def test_pbx_text_that_cannot_be_encoded_is_replaced() -> None:
    part = Participant.parse(
        {
            "id": 1,
            "dn": "101",
            "status": "Ringing",
            "callid": 3,
            "party_dn": "10000",
            "party_dn_type": "Wexternalline",
            "party_caller_id": "7916\ud800",
            "party_caller_name": "\udc00 Ivan \U0001f600",
        }
    )
    assert (part.party_caller_id, part.party_caller_name) == ("7916\ufffd", "\ufffd Ivan \U0001f600")
    graph = CallGraph(Settings(grace=1.0, timezone="UTC"), Facts())
    graph.upsert(part, 10.0)
    (ringing,) = graph.drain()
    assert ringing.event.caller_id == "7916\ufffd" and ringing.event.SerializeToString()


@pytest.mark.parametrize("makecall", [False, True])
@pytest.mark.parametrize("scenario", ["outbound_answered", "outbound_unanswered"])
def test_an_outbound_ringtime_is_the_dialling_time(scenario: str, makecall: bool) -> None:
    lines = lines_of(build(scenario, {"ring_seconds": 3, "talk_seconds": 4, "makecall": makecall}))
    _, got = one_call(replay(lines), scenario)
    assert dict(got[-1])["event"] == "outgoing" and dict(got[-1])["ringtime"] == "3"


def test_a_route_point_or_trunk_participant_is_never_a_user() -> None:
    """The external party's own legs on a monitored trunk or route point (docs/3cx.md): no event of theirs,
    no direction from them; when the last of them leaves after the user, the call is over at once."""
    graph = CallGraph(
        Settings(grace=1.0, timezone="UTC"),
        Facts(dn_types={"crmhooks": "Wroutepoint", "10000": "Wexternalline", "101": "Wextension"}),
    )
    carrier = {"callid": 9, "party_dn": "101", "party_dn_type": "Wextension", "party_caller_id": "101"}
    for pid, dn in ((1, "crmhooks"), (2, "10000")):
        graph.upsert(Participant.parse({"id": pid, "dn": dn, "status": "Connected", **carrier}), 10.0)
    assert graph.drain() == [] and graph.chains[9].direction == ""
    graph.upsert(
        Participant.parse(
            {
                "id": 3,
                "dn": "101",
                "status": "Dialing",
                "callid": 9,
                "party_dn": "10000",
                "party_dn_type": "Wexternalline",
                "party_caller_id": "79031112233",
            }
        ),
        10.5,
    )
    assert graph.chains[9].direction == "outgoing"
    graph.upsert(
        Participant.parse(
            {
                "id": 3,
                "dn": "101",
                "status": "Connected",
                "callid": 9,
                "party_dn": "10000",
                "party_dn_type": "Wexternalline",
                "party_caller_id": "79031112233",
            }
        ),
        13.5,
    )
    for dn, pid in (("101", 3), ("crmhooks", 1), ("10000", 2)):
        graph.remove(dn, pid, 20.0)
    assert [(e.event_id.split("/")[1], e.event.user, e.event.ring_seconds) for e in graph.drain()] == [
        ("dialing", "101", 0),
        ("answered", "101", 0),
        ("ended", "101", 3),
    ]
    assert 9 in graph.finished  # over when the external party's leg left, before any grace


def test_only_the_calls_asked_about_are_settled_by_the_answer() -> None:
    """A call whose last leg left while ActiveCalls was being asked about others is not taken as over."""
    graph = CallGraph(Settings(grace=1.0, timezone="UTC"), Facts())
    for pid, callid in ((1, 7), (2, 8)):
        graph.upsert(
            Participant(
                id=pid,
                dn="101",
                status="Connected",
                callid=callid,
                party_dn="10000",
                party_dn_type="Wexternalline",
                party_caller_id=f"7916123456{pid}",
            ),
            10.0,
        )
    graph.remove("101", 1, 11.0)
    asked = graph.settling()
    graph.remove("101", 2, 11.1)  # while the question about call 7 is on its way
    graph.settle(11.2, listed=set(), asked=asked)
    assert 7 in graph.finished and 8 in graph.chains and graph.settling() == {8: [8]}


@pytest.mark.parametrize(
    ("caller", "shown", "expected"),
    [
        ("79161234567", ["79161234567 Acme Ltd", "79037770011"], ("79037770011", "")),  # inbound: caller, then onward
        ("79031112233", ["74957770000 Supplier Co", "79031112233"], ("74957770000", "Supplier Co")),  # outbound
        ("+79161234567", ["79161234567", "79037770011 79037770011"], ("79037770011", "")),  # a name that repeats it
        ("79161234567", ["79161234567", "101 Ivan Petrov"], ("", "")),  # still at a DN of ours: no outside number
        ("79161234567", ["79161234567", ""], ("", "")),
        ("79161234567", [], ("", "")),
    ],
)
def test_the_outside_number_a_call_went_on_to(caller: str, shown: list[str], expected: tuple[str, str]) -> None:
    """Among ActiveCalls' Caller / Callee texts: neither a directory DN nor the call's own external party."""
    chain = Chain(1, "261207010000", 0.0, caller_id=caller)
    facts = Facts(dn_types={"101": "Wextension", "10000": "Wexternalline"}, names={"101": "Ivan Petrov"})
    assert outside_party(chain, facts, shown) == expected
