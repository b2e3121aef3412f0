"""Zammad's mapping, event by event: which CTI requests each scenario of docs/webhooks.md §6 sends."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tcxhooks.dispatcher.crm import CrmError, CrmEvent
from tcxhooks.dispatcher.crm.zammad.mapping import EXISTS, SERVER, ZammadMapping, ZammadOptions
from tcxhooks.v1 import events_pb2

from .scenarios import CALLER, CHAIN, DID, SCENARIOS, analytics, ended, ev, view

MAX_STEPS = 16  # as the engine allows
SETTINGS = ZammadOptions(user_map={"102": "boris@example.com"})
Outcome = dict[str, Any] | CrmError


def drive(
    events: list[events_pb2.Event | CrmEvent], answers: list[Outcome] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Runs the mapping as the engine does (state stored as JSON after every answer); returns the
    requests sent and the stored states. `answers` are Zammad's answers in order ({} when absent)."""
    mapping, stored, sent = ZammadMapping(), {}, []
    queue = list(answers or [])
    for item in events:
        event = item if isinstance(item, CrmEvent) else view(item)
        key = mapping.key(event)
        if key is None:
            continue
        state = mapping.load(stored.get(key))
        for _ in range(MAX_STEPS):
            call = mapping.next_call(event, state, SETTINGS)
            if call is None:
                break
            sent.append(dict(call.params))
            outcome = queue.pop(0) if queue else {}
            try:
                state = (
                    mapping.on_error(event, state, call, outcome)
                    if isinstance(outcome, CrmError)
                    else mapping.on_result(event, state, call, outcome)
                )
            except CrmError:
                break  # the attempt ends; the state stays as stored
            stored[key] = mapping.dump(state)
        else:
            raise AssertionError(f"more than {MAX_STEPS} requests for {event.event_id}: the mapping never finishes")
    return sent, stored


def short(requests: list[dict[str, Any]]) -> list[str]:
    def one(r: dict[str, Any]) -> str:
        extra = [f"{k}={r[k]}" for k in ("user", "queue", "answeringNumber", "cause") if k in r]
        return " ".join([r["event"], r["direction"], *extra])

    return [one(r) for r in requests]


EXPECTED = {
    "inbound answered": [
        "newCall in user=['101']",
        "answer in user=101 answeringNumber=101",
        "hangup in answeringNumber=101 cause=normalClearing",
    ],
    "queue ring-all": [
        "newCall in user=[] queue=800",
        "answer in user=102 answeringNumber=boris@example.com",
        "hangup in answeringNumber=boris@example.com cause=normalClearing",
    ],
    "queue abandoned with callback": ["newCall in user=[] queue=800", "hangup in cause=cancel"],
    "blind transfer": [
        "newCall in user=['101']",
        "answer in user=101 answeringNumber=101",
        "hangup in answeringNumber=101 cause=normalClearing",
    ],
    "attended transfer": [
        "newCall in user=['101']",
        "answer in user=101 answeringNumber=101",
        "hangup in answeringNumber=101 cause=normalClearing",
    ],
    "outbound answered": [
        "newCall out user=['101']",
        "answer out",
        "hangup out answeringNumber=101 cause=normalClearing",
    ],
    "outbound not answered": ["newCall out user=['101']", "hangup out cause=noAnswer"],
}


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_each_scenario_is_one_row_newcall_one_answer_one_hangup(scenario: str) -> None:
    sent, _ = drive(SCENARIOS[scenario])
    assert short(sent) == EXPECTED[scenario]
    assert {r["callId"] for r in sent} == {CHAIN}


def test_numbers_of_inbound_and_outbound_rows() -> None:
    inbound, _ = drive(SCENARIOS["inbound answered"])
    assert (inbound[0]["from"], inbound[0]["to"]) == (CALLER, DID)
    outbound, _ = drive(SCENARIOS["outbound answered"])
    assert {(r["from"], r["to"]) for r in outbound} == {("101", CALLER)}


def test_an_outbound_call_with_dialing_gets_its_row_when_it_starts() -> None:
    sent, _ = drive(
        [
            ev("dialing", 0, "101", direction="out", did=""),
            ev("answered", 1, "101", direction="out"),
            ended(1, "101", direction="out"),
        ]
    )
    assert short(sent) == [
        "newCall out user=['101']",
        "answer out",
        "hangup out answeringNumber=101 cause=normalClearing",
    ]


def test_names_go_to_user_when_the_contract_carries_them() -> None:
    named = [
        replace(view(ev("ringing", 0, "101")), user_name="Anna Petrova"),
        replace(view(ev("answered", 1, "101")), user_name="Anna Petrova"),
    ]
    sent, _ = drive(named)
    assert (sent[0]["user"], sent[1]["user"]) == (["Anna Petrova"], "Anna Petrova")


def test_a_retried_newcall_that_zammad_has_counts_as_done() -> None:
    exists = CrmError("zammad newCall: HTTP 500 Object already exists!", status=500, code=EXISTS)
    sent, stored = drive([ev("ringing", 0, "101"), ev("answered", 1, "101")], [exists])
    assert short(sent) == ["newCall in user=['101']", "answer in user=101 answeringNumber=101"]
    assert stored[CHAIN]["new_call"] == "sent"


def test_an_answer_zammad_refuses_with_an_opaque_500_is_preceded_by_newcall_once() -> None:
    opaque = CrmError("zammad answer: HTTP 500", status=500, code=SERVER)
    # Zammad never got the newCall (say it was down then): answer 500, newCall ok, answer ok
    sent, stored = drive([ev("answered", 1, "101")], [{}, opaque, {}, {}])
    assert short(sent) == [
        "newCall in user=['101']",
        "answer in user=101 answeringNumber=101",
        "newCall in user=['101']",
        "answer in user=101 answeringNumber=101",
    ]
    assert stored[CHAIN]["answered_by"] == "101" and stored[CHAIN]["row_check"] == ""


def test_a_second_opaque_500_after_zammad_confirmed_the_row_ends_the_attempt() -> None:
    opaque = CrmError("zammad hangup: HTTP 500", status=500, code=SERVER)
    exists = CrmError("zammad newCall: HTTP 500 Object already exists!", status=500, code=EXISTS)
    sent, stored = drive([ev("ringing", 0, "101"), ended(0, "101", "Missed")], [{}, opaque, exists, opaque])
    assert short(sent) == [
        "newCall in user=['101']",
        "hangup in cause=cancel",
        "newCall in user=['101']",
        "hangup in cause=cancel",
    ]
    assert stored[CHAIN]["hung_up"] is False and stored[CHAIN]["row_check"] == "done"


def test_a_rejected_caller_is_hung_up_at_once_and_nothing_else_is_sent() -> None:
    sent, stored = drive(SCENARIOS["inbound answered"], [{"action": "reject", "reason": "busy"}])
    assert short(sent) == ["newCall in user=['101']", "hangup in cause=busy"]
    assert stored[CHAIN]["new_call"] == "rejected" and stored[CHAIN]["hung_up"] is True


def test_the_dial_answer_to_an_outbound_newcall_changes_nothing() -> None:
    sent, _ = drive(SCENARIOS["outbound answered"], [{"action": "dial", "caller_id": "4930111", "number": CALLER}])
    assert short(sent)[1:] == ["answer out", "hangup out answeringNumber=101 cause=normalClearing"]


def test_internal_calls_and_non_call_events_send_nothing() -> None:
    sent, _ = drive(
        [ev("ringing", 0, "102", direction="internal"), ended(1, "102", direction="internal"), analytics(1)]
    )
    assert sent == []


def test_other_errors_end_the_attempt_without_changing_the_state() -> None:
    down = CrmError("zammad newCall: no answer", code="network")
    sent, stored = drive([ev("ringing", 0, "101")], [down])
    assert len(sent) == 1 and stored == {}
