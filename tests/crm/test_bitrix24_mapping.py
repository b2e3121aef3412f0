"""The Bitrix24 mapping without a network: the docs/webhooks.md §6 scenarios give the exact calls, in order,
and every error of docs/crm.md's Bitrix24 table takes its documented way."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from tcxhooks.dispatcher.crm import Call, CrmError, CrmEvent
from tcxhooks.dispatcher.crm.bitrix24.mapping import BitrixMapping, Context, Leg, Options

MSK = dt.timezone(dt.timedelta(hours=3))
T0 = dt.datetime(2025, 11, 25, 18, 45, tzinfo=MSK).timestamp()
USERS = {"101": 11, "102": 12, "103": 13}
CALLER = "79161234567"


def ev(kind: str, link: int, user: str = "", **fields: Any) -> CrmEvent:
    base: dict[str, Any] = {
        "kind": kind,
        "event_id": f"{kind}/{link}/{user}",
        "chain": "251125184500_698",
        "occurred_at": T0 + fields.pop("at", 0),
        "call_id": f"251125184500_698-{link}",
        "link": link,
        "direction": "in",
        "caller": CALLER,
        "did": "74951234567",
        "user": user,
        "usertype": "ext" if user.startswith("1") else ("queue" if user.startswith("8") else ""),
    }
    base.update(fields)
    return CrmEvent(**base)


class Portal:
    """Canned Bitrix24 answers: a CALL_ID per register, contact 797 for the caller."""

    def __init__(self) -> None:
        self.calls = 0

    def answer(self, call: Call) -> Any:
        if call.step == "register":
            self.calls += 1
            return {"CALL_ID": f"externalCall.{self.calls}", "CRM_ENTITY_TYPE": "CONTACT", "CRM_ENTITY_ID": 797}
        if call.step == "finish":
            return {
                "ID": self.calls,
                "CRM_ACTIVITY_ID": 900 + self.calls,
                "CRM_ENTITY_TYPE": "CONTACT",
                "CRM_ENTITY_ID": 797,
            }
        return {"TRANSCRIPT_ID": 1} if call.step == "transcript" else True


def context(fresh: bool = True, **options: Any) -> Context:
    return Context(USERS, options.pop("default_user", 1), "74951234567", fresh, Options(timezone=MSK, **options))


def play(
    events: list[CrmEvent], ctx: Context | None = None, legs: dict[str, Leg] | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Leg]]:
    """Runs each event to its end as the engine would; returns (method, params) in order and the legs."""
    mapping, portal = BitrixMapping(), Portal()
    legs = {} if legs is None else legs
    made: list[tuple[str, dict[str, Any]]] = []
    for event in events:
        key = mapping.key(event)
        if key is None:
            continue
        leg = legs.get(key, Leg())
        for _ in range(16):
            call = mapping.next_call(event, leg, ctx or context())
            if call is None:
                break
            made.append((call.method.split(".")[-1], dict(call.params)))
            leg = mapping.on_result(event, leg, call, portal.answer(call))
        legs[key] = mapping.load(mapping.dump(leg))  # what the store keeps
    return made, legs


def methods(made: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [m for m, _ in made]


def test_inbound_answered_registers_on_ringing_and_finishes_with_duration() -> None:
    made, legs = play(
        [
            ev("ringing", 0, "101"),
            ev("answered", 1, "101"),
            ev("ended", 1, "101", finishtype="Ok", duration=65, title="Main line"),
        ]
    )
    assert methods(made) == ["register", "finish"]
    register, finish = made[0][1], made[1][1]
    assert register == {
        "USER_ID": 11,
        "PHONE_NUMBER": CALLER,
        "TYPE": 2,
        "CALL_START_DATE": "2025-11-25T18:45:00+03:00",
        "CRM_CREATE": 0,
        "SHOW": 1,
        "ADD_TO_CHAT": 1,
        "EXTERNAL_CALL_ID": "251125184500_698-0",
        "LINE_NUMBER": "74951234567",
    }
    assert finish == {
        "CALL_ID": "externalCall.1",
        "USER_ID": 11,
        "DURATION": 65,
        "ADD_TO_CHAT": 1,
        "STATUS_CODE": "200",
    }
    assert legs["251125184500_698-1"].finished and legs["251125184500_698-1"].activity_id == 901


def test_the_contract_start_time_wins_over_the_event_time() -> None:
    made, _ = play([ev("ringing", 0, "101", at=30, started_at=T0 + 2)])
    assert made[0][1]["CALL_START_DATE"] == "2025-11-25T18:45:02+03:00"


def test_queue_ring_all_shows_every_agent_and_hides_the_others_when_one_answers() -> None:
    made, _ = play(
        [
            ev("ringing", 0, "800"),
            ev("ringing", 0, "101"),
            ev("ringing", 0, "102"),
            ev("answered", 1, "102"),
            ev("ended", 1, "102", finishtype="Ok", duration=40),
        ]
    )
    assert methods(made) == ["register", "show", "hide", "finish"]
    assert made[0][1]["USER_ID"] == 11 and made[1][1] == {"CALL_ID": "externalCall.1", "USER_ID": [12]}
    assert made[2][1] == {"CALL_ID": "externalCall.1", "USER_ID": [11]}
    assert made[3][1]["USER_ID"] == 12 and made[3][1]["STATUS_CODE"] == "200"


def test_ringing_stopped_hides_that_agent() -> None:
    made, _ = play(
        [ev("ringing", 0, "101"), ev("ringing", 0, "102"), ev("ringing_stopped", 0, "101"), ev("answered", 1, "102")]
    )
    assert methods(made) == ["register", "show", "hide"]
    assert made[2][1]["USER_ID"] == [11]


def test_queue_abandoned_with_callback_finishes_missed_and_adds_a_task() -> None:
    made, _ = play(
        [
            ev("ringing", 0, "800"),
            ev("ringing", 0, "101"),
            ev("ringing", 0, "102"),
            ev(
                "ended",
                0,
                "800",
                usertype="queue",
                finishtype="Missed",
                callback=True,
                title="Callback ordered in queue 800",
                at=30,
            ),
        ],
        context(default_user=1),
    )
    assert methods(made) == ["register", "show", "finish", "add"]
    finish, todo = made[2][1], made[3][1]
    assert finish == {
        "CALL_ID": "externalCall.1",
        "USER_ID": 1,
        "DURATION": 0,
        "ADD_TO_CHAT": 1,
        "STATUS_CODE": "304",
        "FAILED_REASON": "Callback ordered in queue 800",
    }
    assert todo["ownerTypeId"] == 3 and todo["ownerId"] == 797 and todo["parentActivityId"] == 901
    assert todo["deadline"] == "2025-11-25T19:00:30+03:00" and todo["responsibleId"] == 1
    assert "Клиент заказал обратный звонок" in todo["description"]


def test_a_missed_call_rung_at_nobody_mapped_is_registered_without_a_card_at_its_end() -> None:
    made, _ = play(
        [
            ev("ringing", 0, "800"),
            ev("ringing", 0, "105"),
            ev("ended", 0, "800", usertype="queue", finishtype="Missed"),
        ],
        context(default_user=1),
    )
    assert methods(made) == ["register", "finish", "add"]
    assert made[0][1]["SHOW"] == 0 and made[0][1]["USER_ID"] == 1


def test_blind_transfer_is_two_bitrix_calls() -> None:
    made, _ = play(
        [
            ev("ringing", 0, "101"),
            ev("answered", 1, "101"),
            ev("ringing", 2, "102"),
            ev("ended", 1, "101", finishtype="Ok", transfer=True, duration=20),
            ev("answered", 2, "102", trtype="Blind"),
            ev("ended", 2, "102", finishtype="Ok", duration=30),
        ]
    )
    assert methods(made) == ["register", "register", "finish", "finish"]
    assert made[1][1]["USER_ID"] == 12 and made[1][1]["EXTERNAL_CALL_ID"] == "251125184500_698-2"
    assert (made[2][1]["CALL_ID"], made[2][1]["DURATION"]) == ("externalCall.1", 20)
    assert (made[3][1]["CALL_ID"], made[3][1]["DURATION"]) == ("externalCall.2", 30)
    assert "FAILED_REASON" not in made[2][1]


def test_attended_transfer_registers_the_target_when_it_takes_the_call() -> None:
    made, _ = play(
        [
            ev("ringing", 0, "101"),
            ev("answered", 1, "101"),
            ev("answered", 2, "102", trtype="Accomp"),
            ev("ended", 1, "101", finishtype="Ok", transfer=True, duration=20),
            ev("ended", 2, "102", finishtype="Ok", duration=12),
        ]
    )
    assert methods(made) == ["register", "register", "finish", "finish"]
    assert made[1][1]["SHOW"] == 1 and made[1][1]["USER_ID"] == 12


def test_outbound_answered_and_not() -> None:
    made, _ = play(
        [
            ev("answered", 1, "101", direction="out", caller="79031112233"),
            ev("ended", 1, "101", direction="out", caller="79031112233", finishtype="Ok", duration=8),
        ]
    )
    assert methods(made) == ["register", "finish"]
    assert (made[0][1]["TYPE"], made[0][1]["SHOW"], made[0][1]["EXTERNAL_CALL_ID"]) == (1, 0, "251125184500_698-1")
    made, _ = play([ev("ended", 0, "101", direction="out", caller="79031112233", finishtype="Missed")])
    assert methods(made) == ["register", "finish"]  # no call-back task for the agent's own unanswered dial
    assert made[1][1]["STATUS_CODE"] == "603-S"


def test_an_outbound_dialing_event_pops_the_card_while_it_rings() -> None:
    made, _ = play(
        [
            ev("dialing", 0, "101", direction="out", caller="79031112233"),
            ev("answered", 1, "101", direction="out", caller="79031112233"),
            ev("ended", 1, "101", direction="out", caller="79031112233", finishtype="Ok", duration=8),
        ]
    )
    assert methods(made) == ["register", "finish"]
    assert made[0][1]["SHOW"] == 1 and made[0][1]["TYPE"] == 1


def test_stale_ringing_registers_without_card_and_shows_are_real_time_steps() -> None:
    mapping = BitrixMapping()
    stale = context(fresh=False)
    register = mapping.next_call(ev("ringing", 0, "101"), Leg(), stale)
    assert register is not None and register.params["SHOW"] == 0 and not register.realtime
    show = mapping.next_call(ev("ringing", 0, "102"), Leg(call_id="c", shown=(11,)), stale)
    assert show is not None and show.realtime
    leg = mapping.on_skipped(ev("ringing", 0, "102"), Leg(call_id="c", shown=(11,)), show)
    assert mapping.next_call(ev("ringing", 0, "102"), leg, stale) is None  # skipped once, not asked again


def test_recording_is_uploaded_or_linked_and_falls_back_to_upload() -> None:
    leg = Leg(call_id="externalCall.1", finished=True, entity_type="CONTACT", entity_id=797)
    recording = ev("recording", 1, links=("https://media/r/1.mp3",))
    mapping = BitrixMapping()
    upload = mapping.next_call(recording, leg, context())
    assert upload is not None and upload.upload is not None and upload.upload.field == "FILE_CONTENT"
    assert "RECORD_URL" not in upload.params
    link = mapping.next_call(recording, leg, context(recording="link"))
    assert link is not None and link.params["RECORD_URL"] == "https://media/r/1.mp3" and link.upload is None
    refused = CrmError("x", verdict="dead", code="ERROR_CORE", description="Server returns HTTP error code 403")
    leg = mapping.on_error(recording, leg, link, refused)
    retried = mapping.next_call(recording, leg, context(recording="link"))
    assert retried is not None and retried.upload is not None
    leg = mapping.on_result(recording, leg, retried, {"FILE_ID": 5})
    assert mapping.next_call(recording, leg, context()) is None
    assert mapping.next_call(recording, Leg(), context()) is None  # never registered: nothing to attach to


def test_analytics_attach_transcript_then_comment_the_summary() -> None:
    from tcxhooks.dispatcher.crm import Segment

    leg = Leg(call_id="externalCall.1", finished=True, entity_type="CONTACT", entity_id=797)
    analytics = ev(
        "analytics",
        1,
        summary="Клиент спросил про доставку.",
        text="…",
        segments=(Segment("operator", 0.2, 2.6, "Добрый день"), Segment("client", 2.9, 5.1, "Здравствуйте")),
    )
    made, _ = play([analytics], legs={"251125184500_698-1": leg})
    assert methods(made) == ["attachTranscription", "add"]
    assert made[0][1]["MESSAGES"] == [
        {"SIDE": "User", "START_TIME": 0, "STOP_TIME": 3, "MESSAGE": "Добрый день"},
        {"SIDE": "Client", "START_TIME": 2, "STOP_TIME": 6, "MESSAGE": "Здравствуйте"},
    ]
    assert made[1][1]["fields"]["ENTITY_TYPE"] == "contact" and "доставку" in made[1][1]["fields"]["COMMENT"]
    mono = replace(analytics, segments=(Segment("mono", 0, 3, "всё"),), text="всё сказано")
    made, _ = play([mono], legs={"251125184500_698-1": leg})
    assert methods(made) == ["add"] and "всё сказано" in made[0][1]["fields"]["COMMENT"]


def test_a_refused_user_falls_back_to_the_default_user() -> None:
    mapping = BitrixMapping()
    ended = ev("ended", 1, "101", finishtype="Ok", duration=5)
    register = mapping.next_call(ended, Leg(), context())
    assert register is not None
    gone = CrmError("x", verdict="dead", code="ERROR_CORE", description="User is not found or is not active")
    leg = mapping.on_error(ended, Leg(), register, gone)
    again = mapping.next_call(ended, leg, context())
    assert again is not None and again.params["USER_ID"] == 1
    with pytest.raises(CrmError):
        mapping.on_error(ended, leg, again, gone)  # the default user refused too: the event is dead


def test_finish_not_found_is_looked_up_in_the_statistics_before_anything_else() -> None:
    mapping = BitrixMapping()
    ended = ev("ended", 1, "101", finishtype="Ok", duration=5)
    leg = Leg(call_id="externalCall.1", user_id=11)
    finish = mapping.next_call(ended, leg, context())
    assert finish is not None
    lost = CrmError(
        "x",
        verdict="retry",
        code="ERROR_CORE",
        description="Call is not found (call should be registered prior to finishing)",
    )
    leg = mapping.on_error(ended, leg, finish, lost)
    lookup = mapping.next_call(ended, leg, context())
    assert lookup is not None and lookup.params == {"FILTER": {"CALL_ID": "externalCall.1"}}
    done = mapping.on_result(
        ended,
        leg,
        lookup,
        [{"CALL_ID": "externalCall.1", "CRM_ACTIVITY_ID": "77", "CRM_ENTITY_TYPE": "CONTACT", "CRM_ENTITY_ID": "797"}],
    )
    assert done.finished and done.activity_id == 77 and mapping.next_call(ended, done, context()) is None
    forgotten = mapping.on_result(ended, leg, lookup, [])
    again = mapping.next_call(ended, forgotten, context())
    assert again is not None and again.step == "register"


def test_unknown_numbers_internal_calls_and_status_events_make_no_calls() -> None:
    mapping = BitrixMapping()
    assert mapping.key(ev("ringing", 0, "101", caller="")) is None
    assert mapping.key(ev("ended", 1, "101", direction="internal")) is None
    assert mapping.key(CrmEvent(kind="extension_added", event_id="e", chain="ext:101", occurred_at=T0)) is None
    with pytest.raises(CrmError) as failure:
        mapping.next_call(ev("ended", 1, "105", finishtype="Ok"), Leg(), context(default_user=0))
    assert failure.value.verdict == "dead"
