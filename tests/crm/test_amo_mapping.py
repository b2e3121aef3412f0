"""amoCRM's mapping, event by event: which requests each scenario of docs/webhooks.md §6 makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tcxhooks.dispatcher.crm import Call, CrmError, CrmEvent
from tcxhooks.dispatcher.crm.amocrm.leg import RECORDING_TIMEOUT, AmoLeg, absorb
from tcxhooks.dispatcher.crm.amocrm.mapping import DUPLICATE, NOT_ACCEPTED, AmoMapping
from tcxhooks.dispatcher.crm.amocrm.requests import AmoOptions
from tcxhooks.v1 import events_pb2

from .scenarios import CALLER, CHAIN, DID, SCENARIOS, STARTED, analytics, ended, ev, recording, view

SETTINGS = AmoOptions(user_map={"101": 501, "102": 502}, default_user=500, language="en")
NOW = STARTED + 1000
MAX_STEPS = 16  # as the engine allows
Amo = Callable[[Call], Any]  # what amoCRM answers a call (a result, or a CrmError to raise)


def known_number(call: Call) -> Any:
    """amoCRM where the caller is a contact with one active lead (id 9001)."""
    body = call.params.get("body")
    if call.step == "call":
        return {
            "_embedded": {
                "calls": [{"id": 1, "request_id": body[0]["request_id"], "entity_type": "lead", "entity_id": 9001}]
            }
        }
    if call.step == "task":
        return {"_embedded": {"tasks": [{"id": 77, "request_id": body[0]["request_id"]}]}}
    return {}


def unknown_number(call: Call) -> Any:
    body = call.params.get("body")
    if call.step == "call":
        return {"_embedded": {"calls": []}, "errors": [{"request_id": body[0]["request_id"]}]}
    if call.step == "unsorted":
        return {
            "_embedded": {
                "unsorted": [
                    {
                        "uid": "u1",
                        "request_id": body[0]["request_id"],
                        "_embedded": {"leads": [{"id": 4242}], "contacts": [{"id": 1}]},
                    }
                ]
            }
        }
    return known_number(call)


def drive(
    events: list[events_pb2.Event | CrmEvent],
    amo: Amo = known_number,
    settings: AmoOptions = SETTINGS,
    stored: dict[str, dict[str, Any]] | None = None,
    fresh: bool = True,
) -> tuple[list[Call], dict[str, Any]]:
    """As the sink does: store the event's facts, then let the engine make the calls."""
    mapping, sent = AmoMapping(settings), []
    stored = {} if stored is None else stored
    for item in events:
        event = item if isinstance(item, CrmEvent) else view(item)
        key = mapping.key(event)
        if key is None:
            continue
        leg = absorb(event, AmoLeg.load(stored.get(key)), settings.recording_wait, settings.links)
        stored[key] = leg.dump()
        for _ in range(MAX_STEPS):
            call = mapping.next_call(event, leg, NOW)
            if call is None:
                break
            if call.realtime and not fresh:
                leg = mapping.on_skipped(event, leg, call)
            else:
                sent.append(call)
                answer = amo(call)
                try:
                    leg = (
                        mapping.on_error(event, leg, call, answer)
                        if isinstance(answer, CrmError)
                        else mapping.on_result(event, leg, call, answer)
                    )
                except CrmError:
                    break
            stored[key] = leg.dump()
        else:
            raise AssertionError(f"more than {MAX_STEPS} requests for {event.event_id}: the mapping never finishes")
    return sent, stored


def timeout(link: int) -> CrmEvent:
    key = f"{CHAIN}-{link}"
    return CrmEvent(kind=RECORDING_TIMEOUT, event_id="", chain=CHAIN, occurred_at=NOW, call_id=key)


def steps(calls: list[Call]) -> list[str]:
    return [f"{c.step} {c.method}" for c in calls]


def test_inbound_answered_is_one_call_with_its_recording_then_a_transcript_note() -> None:
    sent, stored = drive(SCENARIOS["inbound answered"])
    assert steps(sent) == [
        "notify POST /api/v2/events",
        "call POST /api/v4/calls",
        "transcript_note POST /api/v4/leads/9001/notes",
    ]
    assert sent[0].params["body"] == {"add": [{"type": "phone_call", "phone_number": CALLER, "users": [501]}]}
    logged = sent[1].params["body"][0]
    assert logged == {
        "request_id": f"{CHAIN}-1",
        "direction": "inbound",
        "uniq": f"{CHAIN}-1",
        "duration": 65,
        "source": "3CX",
        "phone": CALLER,
        "call_result": "Main line: talk 0:01:05",
        "call_status": 4,
        "created_at": int(STARTED),
        "responsible_user_id": 501,
        "created_by": 501,
        "link": f"https://media.example/r/{CHAIN}-1/1.mp3",
    }
    note = sent[2].params["body"][0]["params"]["text"]
    assert note.startswith(f"Call {CHAIN}-1") and "Summary: The caller asked" in note and "client: Where" in note
    assert stored[f"{CHAIN}-1"]["logged"] == "call"


def test_queue_ring_all_notifies_each_agent_and_logs_the_answering_one() -> None:
    sent, _ = drive(SCENARIOS["queue ring-all"])
    assert [c.params["body"]["add"][0]["users"] for c in sent if c.step == "notify"] == [[501], [502]]
    assert sent[-1].params["body"][0]["responsible_user_id"] == 502


def test_a_missed_queue_call_is_status_6_for_the_default_user_with_a_call_back_task() -> None:
    sent, _ = drive(SCENARIOS["queue abandoned with callback"])
    assert steps(sent)[-2:] == ["call POST /api/v4/calls", "task POST /api/v4/tasks"]
    logged = sent[-2].params["body"][0]
    assert (logged["call_status"], logged["duration"], logged["responsible_user_id"]) == (6, 0, 500)
    assert "link" not in logged
    task = sent[-1].params["body"][0]
    assert (task["entity_type"], task["entity_id"], task["task_type_id"]) == ("leads", 9001, 1)
    assert task["complete_till"] == int(NOW + 900) and f"{CHAIN}-0" in task["text"]


@pytest.mark.parametrize("scenario", ["blind transfer", "attended transfer"])
def test_a_transferred_call_is_one_amo_call_per_leg_each_with_its_recording(scenario: str) -> None:
    sent, _ = drive(SCENARIOS[scenario])
    logged = [c.params["body"][0] for c in sent if c.step == "call"]
    assert [(c["uniq"], c["responsible_user_id"], c["link"].split("/")[-2]) for c in logged] == [
        (f"{CHAIN}-1", 501, f"{CHAIN}-1"),
        (f"{CHAIN}-2", 502, f"{CHAIN}-2"),
    ]


def test_each_leg_is_logged_from_the_contract_start_time_when_the_monitor_gives_it() -> None:
    """started_at (the chain's arrival at the PBX) wins over the start worked back from a leg's end."""
    events = []
    for shared in SCENARIOS["blind transfer"]:
        event = events_pb2.Event()
        event.CopyFrom(shared)
        if event.HasField("call"):
            event.call.started_time.FromSeconds(int(STARTED) - 7)
        events.append(event)
    sent, _ = drive(events)
    assert [c.params["body"][0]["created_at"] for c in sent if c.step == "call"] == [int(STARTED) - 7] * 2


def test_outbound_calls_are_logged_outbound_and_an_unanswered_one_gets_no_task() -> None:
    answered, _ = drive(SCENARIOS["outbound answered"])
    assert [(c["direction"], c["call_status"], c["phone"]) for c in (answered[0].params["body"][0],)] == [
        ("outbound", 4, CALLER)
    ]
    missed, _ = drive(SCENARIOS["outbound not answered"])
    assert steps(missed) == ["call POST /api/v4/calls"]
    assert missed[0].params["body"][0]["call_status"] == 6


def test_an_unknown_inbound_caller_goes_to_unsorted_and_its_task_to_the_new_lead() -> None:
    sent, stored = drive(SCENARIOS["queue abandoned with callback"], unknown_number)
    assert steps(sent)[-3:] == [
        "call POST /api/v4/calls",
        "unsorted POST /api/v4/leads/unsorted/sip",
        "task POST /api/v4/tasks",
    ]
    entry = sent[-2].params["body"][0]
    assert entry["source_uid"] == f"{CHAIN}-0" and entry["metadata"]["from"] == CALLER
    assert entry["metadata"]["phone"] == DID and entry["_embedded"]["leads"][0]["name"] == f"Missed call from {CALLER}"
    assert sent[-1].params["body"][0]["entity_id"] == 4242
    assert stored[f"{CHAIN}-0"]["logged"] == "unsorted"


def test_texts_are_russian_by_default_and_notes_only_carry_what_is_asked_for() -> None:
    sent, _ = drive(SCENARIOS["queue abandoned with callback"], unknown_number, AmoOptions())
    assert sent[-2].params["body"][0]["_embedded"]["leads"][0]["name"] == f"Пропущенный звонок с {CALLER}"
    assert sent[-1].params["body"][0]["text"] == f"Перезвонить {CALLER}: пропущенный звонок {CHAIN}-0"
    summary_only, _ = drive(SCENARIOS["inbound answered"], settings=AmoOptions(transcript=False))
    assert summary_only[-1].params["body"][0]["params"]["text"] == (
        f"Звонок {CHAIN}-1\n\nКратко: The caller asked where the order is."
    )
    neither, _ = drive(SCENARIOS["inbound answered"], settings=AmoOptions(transcript=False, summary=False))
    assert [c.step for c in neither] == ["call"]


def test_with_recording_none_answered_legs_are_logged_at_their_end_without_links() -> None:
    sent, _ = drive(SCENARIOS["inbound answered"], settings=AmoOptions(links=False))
    assert steps(sent)[:2] == ["call POST /api/v4/calls", "transcript_note POST /api/v4/leads/9001/notes"]
    assert "link" not in sent[0].params["body"][0]


def test_an_unknown_number_without_unsorted_is_left_out_once() -> None:
    settings = AmoOptions(unsorted=False)
    sent, stored = drive(SCENARIOS["inbound answered"], unknown_number, settings)
    assert steps(sent) == ["call POST /api/v4/calls"]
    assert stored[f"{CHAIN}-1"]["logged"] == "nowhere"


def test_an_answered_leg_waits_for_its_recording_and_logs_without_it_when_the_wait_is_over() -> None:
    stored: dict[str, dict[str, Any]] = {}
    first, _ = drive(SCENARIOS["inbound answered"][:3], stored=stored)
    assert steps(first) == ["notify POST /api/v2/events"]  # answered and ended: nothing yet
    assert stored[f"{CHAIN}-1"]["ended"] is True and AmoLeg.load(stored[f"{CHAIN}-1"]).waiting
    later, _ = drive([timeout(1), recording(1), analytics(1)], stored=stored)
    assert steps(later) == [
        "call POST /api/v4/calls",
        "link_note POST /api/v4/leads/9001/notes",
        "transcript_note POST /api/v4/leads/9001/notes",
    ]
    assert "link" not in later[0].params["body"][0]
    assert later[1].params["body"][0]["params"]["text"] == (
        f"Recording of call {CHAIN}-1: https://media.example/r/{CHAIN}-1/1.mp3"
    )


def test_with_recording_wait_0_an_answered_leg_is_logged_at_its_end() -> None:
    sent, _ = drive(SCENARIOS["inbound answered"][:3], settings=AmoOptions(recording_wait=0))
    assert steps(sent) == ["call POST /api/v4/calls"]


def test_a_stale_ringing_notifies_nobody_and_is_not_tried_again() -> None:
    sent, stored = drive([ev("ringing", 0, "101")], fresh=False)
    assert sent == [] and stored[f"{CHAIN}-0"]["notified"] == ["101"]


def test_an_account_without_call_notifications_still_gets_the_call() -> None:
    def refusing(call: Call) -> Any:
        if call.step == "notify":
            return CrmError("amo notify: HTTP 404", verdict="dead", status=404, code=NOT_ACCEPTED)
        return known_number(call)

    sent, _ = drive(SCENARIOS["inbound answered"], refusing)
    assert steps(sent)[:2] == ["notify POST /api/v2/events", "call POST /api/v4/calls"]


def test_a_pending_call_is_looked_up_by_its_uniq_before_it_is_sent_again() -> None:
    key = f"{CHAIN}-1"
    leg = absorb(view(ended(1, "101")), AmoLeg(), 0)
    found = {
        "_embedded": {
            "notes": [{"id": 5, "entity_id": 3003, "note_type": "call_in", "params": {"uniq": key, "link": ""}}]
        }
    }

    def amo(call: Call) -> Any:
        return found if call.step == "find_call" and call.method == "GET /api/v4/contacts/notes" else {}

    sent, stored = drive([ended(1, "101"), recording(1)], amo, stored={key: {**leg.dump(), "pending": "call"}})
    assert steps(sent) == [
        "find_call GET /api/v4/leads/notes",
        "find_call GET /api/v4/contacts/notes",
        "link_note POST /api/v4/contacts/3003/notes",
    ]
    assert (stored[key]["logged"], stored[key]["entity_id"], stored[key]["pending"]) == ("call", 3003, "")


def test_a_pending_call_amo_never_got_is_sent_after_every_entity_type_was_searched() -> None:
    key = f"{CHAIN}-1"
    leg = absorb(view(ended(1, "101")), AmoLeg(), 0)
    sent, stored = drive([ended(1, "101")], stored={key: {**leg.dump(), "pending": "call"}})
    assert [c.method for c in sent] == [
        "GET /api/v4/leads/notes",
        "GET /api/v4/contacts/notes",
        "GET /api/v4/companies/notes",
        "GET /api/v4/customers/notes",
        "POST /api/v4/calls",
    ]
    assert stored[key]["logged"] == "call"


def test_a_duplicate_unsorted_entry_is_found_instead_of_created_again() -> None:
    def amo(call: Call) -> Any:
        if call.step == "unsorted":
            return CrmError("amo unsorted: HTTP 400", verdict="dead", status=400, code=DUPLICATE)
        if call.step == "find_unsorted":
            return {
                "_embedded": {
                    "unsorted": [
                        {
                            "uid": "x",
                            "source_uid": f"{CHAIN}-0",
                            "metadata": {"uniq": f"{CHAIN}-0"},
                            "_embedded": {"leads": [{"id": 4343}]},
                        }
                    ]
                }
            }
        return unknown_number(call)

    sent, stored = drive(SCENARIOS["queue abandoned with callback"], amo)
    assert steps(sent)[-3:] == [
        "unsorted POST /api/v4/leads/unsorted/sip",
        "find_unsorted GET /api/v4/leads/unsorted",
        "task POST /api/v4/tasks",
    ]
    assert stored[f"{CHAIN}-0"]["entity_id"] == 4343


def test_redelivering_every_event_sends_nothing_again() -> None:
    stored: dict[str, dict[str, Any]] = {}
    drive(SCENARIOS["blind transfer"] + [analytics(2)], stored=stored)
    again, _ = drive(SCENARIOS["blind transfer"] + [analytics(2)], stored=stored)
    assert again == []


def test_internal_calls_and_other_events_send_nothing() -> None:
    sent, stored = drive(
        [
            ev("ringing", 0, "102", direction="internal"),
            ended(1, "102", direction="internal"),
            ev("answered", 1, "101"),
            ev("ringing_stopped", 0, "101"),
        ]
    )
    assert sent == [] and stored == {}
