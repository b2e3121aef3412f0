"""The adapter framework without a CRM: leg state in the store, the step engine, the event view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.dispatcher.crm import Call, CrmError, CrmEvent, LegStore, Trace, run_steps, same_number
from tcxhooks.v1 import common_pb2, events_pb2

# --- leg store ------------------------------------------------------------------------------


async def test_leg_state_round_trips_per_crm_and_leg(legs: LegStore) -> None:
    assert await legs.get("b24", "251125184500_698-1") is None
    await legs.put("b24", "251125184500_698-1", {"call_id": "externalCall.1", "shown": [1, 2]})
    await legs.put("b24", "251125184500_698-1", {"call_id": "externalCall.1", "shown": [2]})
    await legs.put("other", "251125184500_698-1", {"call_id": "x"})
    assert await legs.get("b24", "251125184500_698-1") == {"call_id": "externalCall.1", "shown": [2]}
    assert await legs.get("other", "251125184500_698-1") == {"call_id": "x"}


async def test_values_are_kept_per_crm(legs: LegStore) -> None:
    await legs.set_value("b24", "oauth", "one")
    await legs.set_value("b24", "oauth", "two")
    assert await legs.value("b24", "oauth") == "two"
    assert await legs.value("amo", "oauth") is None


async def test_a_click_is_taken_by_the_first_matching_chain_only(legs: LegStore) -> None:
    await legs.add_click("b24", "101", "+7 916 123-45-67", "externalCall.c2c", {"user_id": 1})
    assert await legs.take_click("b24", "251125184500_700", "102", "79161234567", 120) is None  # other extension
    assert await legs.take_click("b24", "251125184500_700", "101", "79031112233", 120) is None  # other number
    taken = await legs.take_click("b24", "251125184500_700", "101", "89161234567", 120)
    assert taken is not None and taken.crm_call_id == "externalCall.c2c" and taken.details == {"user_id": 1}
    assert (await legs.take_click("b24", "251125184500_700", "101", "", 120)) == taken  # the same chain again
    assert await legs.take_click("b24", "251125184500_701", "101", "79161234567", 120) is None  # already taken


async def test_prune_removes_what_was_not_touched_for_long(legs: LegStore) -> None:
    await legs.put("b24", "old", {})
    await legs.add_click("b24", "101", "1", "c", {})
    assert await legs.prune(3600) == 0
    assert await legs.prune(-1) == 2
    assert await legs.get("b24", "old") is None


def test_phone_numbers_match_on_their_last_ten_digits() -> None:
    assert same_number("+7 (916) 123-45-67", "89161234567")
    assert not same_number("79161234567", "79161234568")
    assert not same_number("", "")


# --- engine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    crm_id: str = ""
    steps: tuple[str, ...] = ()


@dataclass
class ToyMapping:
    """register → show (real-time) → finish; `recover` turns a "user" error into a second try."""

    def key(self, event: CrmEvent) -> str | None:
        return event.call_id or None

    def load(self, raw: Mapping[str, Any] | None) -> Leg:
        return Leg(raw["crm_id"], tuple(raw["steps"])) if raw else Leg()

    def dump(self, state: Leg) -> dict[str, Any]:
        return {"crm_id": state.crm_id, "steps": list(state.steps)}

    def next_call(self, event: CrmEvent, state: Leg, context: str) -> Call | None:
        for step in ("register", "show", "finish"):
            if step not in state.steps:
                return Call(step, f"toy.{step}", {"user": context, "id": state.crm_id}, realtime=step == "show")
        return None

    def on_result(self, event: CrmEvent, state: Leg, call: Call, result: Any) -> Leg:
        crm_id = result["id"] if call.step == "register" else state.crm_id
        return replace(state, crm_id=crm_id, steps=(*state.steps, call.step))

    def on_error(self, event: CrmEvent, state: Leg, call: Call, error: CrmError) -> Leg:
        raise error

    def on_skipped(self, event: CrmEvent, state: Leg, call: Call) -> Leg:
        return replace(state, steps=(*state.steps, call.step))


@dataclass
class ToyCrm:
    fail_on: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def call(self, call: Call) -> Any:
        if call.method in self.fail_on:
            self.fail_on.discard(call.method)
            raise CrmError(f"{call.method}: HTTP 503", status=503, code="QUERY_LIMIT_EXCEEDED")
        self.calls.append((call.method, dict(call.params)))
        return {"id": "crm-7"}


def ended(call_id: str = "251125184500_698-1") -> CrmEvent:
    event = events_pb2.Event(
        event_id=f"{call_id}/ended",
        chain=call_id.rsplit("-", 1)[0],
        call=events_pb2.CallEvent(type=events_pb2.CALL_EVENT_TYPE_ENDED, call_id=call_id),
    )
    return CrmEvent.of(event)


async def test_each_answer_is_stored_before_the_next_call_so_a_retry_resumes(legs: LegStore) -> None:
    crm = ToyCrm(fail_on={"toy.finish"})
    with pytest.raises(CrmError) as failure:
        await run_steps(ToyMapping(), ended(), "101", legs=legs, crm="toy", caller=crm, fresh=True)
    assert failure.value.verdict == "retry" and failure.value.status == 503
    assert await legs.get("toy", "251125184500_698-1") == {"crm_id": "crm-7", "steps": ["register", "show"]}
    trace = await run_steps(ToyMapping(), ended(), "101", legs=legs, crm="toy", caller=crm, fresh=True)
    assert [m for m, _ in crm.calls] == ["toy.register", "toy.show", "toy.finish"]  # nothing twice
    assert crm.calls[-1][1] == {"user": "101", "id": "crm-7"}
    assert trace.lines == ["finish (toy.finish): ok"]


async def test_realtime_steps_of_a_stale_event_are_skipped_not_sent(legs: LegStore) -> None:
    crm = ToyCrm()
    trace = Trace()
    await run_steps(ToyMapping(), ended(), "101", legs=legs, crm="toy", caller=crm, fresh=False, trace=trace)
    assert [m for m, _ in crm.calls] == ["toy.register", "toy.finish"]
    assert "show (toy.show): skipped (event older than stale_after)" in trace.lines


async def test_a_mapping_that_never_finishes_is_stopped(legs: LegStore) -> None:
    class Endless(ToyMapping):
        def next_call(self, event: CrmEvent, state: Leg, context: str) -> Call | None:
            return Call("again", "toy.again")

    with pytest.raises(CrmError) as failure:
        await run_steps(Endless(), ended(), "101", legs=legs, crm="toy", caller=ToyCrm(), fresh=True)
    assert failure.value.verdict == "dead"


# --- event view -----------------------------------------------------------------------------


def test_the_event_view_reads_call_recording_analytics_and_status_events() -> None:
    stamp = Timestamp(seconds=1764085500)
    call = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        call_id="251125184500_698-2",
        direction=common_pb2.DIRECTION_INCOMING,
        caller_id="79161234567",
        did="74951234567",
        user="800",
        user_type=common_pb2.USER_TYPE_QUEUE,
        finish_type=common_pb2.FINISH_TYPE_MISSED,
        callback=True,
        has_callback=True,
        duration_seconds=0,
        title="Main line",
    )
    view = CrmEvent.of(events_pb2.Event(event_id="e1", chain="251125184500_698", occur_time=stamp, call=call))
    assert (view.kind, view.link, view.direction, view.usertype, view.finishtype, view.callback) == (
        "ended",
        2,
        "in",
        "queue",
        "Missed",
        True,
    )
    assert view.occurred_at == 1764085500 and view.chain_number == "698"
    recording = events_pb2.RecordingReady(
        call_id="251125184500_698-1",
        files=[events_pb2.RecordingFile(url="https://m/1.mp3"), events_pb2.RecordingFile(url="https://m/2.mp3")],
    )
    view = CrmEvent.of(events_pb2.Event(event_id="e2", chain="251125184500_698", recording=recording))
    assert (view.kind, view.link, view.links) == ("recording", 1, ("https://m/1.mp3", "https://m/2.mp3"))
    analytics = events_pb2.AnalyticsReady(
        call_id="251125184500_698-1",
        summary="s",
        segments=[events_pb2.TranscriptSegment(channel="operator", start_seconds=0.5, end_seconds=1.5, text="hello")],
    )
    view = CrmEvent.of(events_pb2.Event(event_id="e3", chain="251125184500_698", analytics=analytics))
    assert view.kind == "analytics" and view.segments[0].channel == "operator"
    status = events_pb2.StatusEvent(type=events_pb2.STATUS_EVENT_TYPE_EXTENSION_ADDED, user="106", name="New One")
    view = CrmEvent.of(events_pb2.Event(event_id="e4", chain="ext:106", status=status))
    assert (view.kind, view.extension, view.extra, view.link) == ("extension_added", "106", {"name": "New One"}, -1)


def test_an_event_without_payload_is_refused() -> None:
    with pytest.raises(ValueError):
        CrmEvent.of(events_pb2.Event(event_id="e", chain="c"))


def test_php_style_forms_are_read_nested_and_odd_names_ignored() -> None:
    from tcxhooks.dispatcher.crm.forms import nested

    pairs = [
        ("event", "ONEXTERNALCALLSTART"),
        ("data[USER_ID]", "11"),
        ("data[PHONE_NUMBER]", "+7916"),
        ("auth[application_token]", "t"),
        ("data", "flat value after a mapping"),
        ("a[b][c][d][e][f]", "deep"),
        ("[x]", "no head"),
        ("data[USER_ID][more]", "value and mapping at once"),
    ]
    assert nested(pairs) == {
        "event": "ONEXTERNALCALLSTART",
        "data": {"USER_ID": "11", "PHONE_NUMBER": "+7916"},
        "auth": {"application_token": "t"},
    }


def test_the_event_view_reads_the_contract_times_names_and_dialing() -> None:
    call = events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        call_id="251125184500_698-1",
        caller_id="79161234567",
        user="101",
        caller_name="Sergey Ivanov",
        user_name="Ivan Petrov",
        queue="800",
        queue_name="Sales",
        started_time=Timestamp(seconds=1764085500),
        answered_time=Timestamp(seconds=1764085503, nanos=500_000_000),
        ended_time=Timestamp(seconds=1764085568),
    )
    view = CrmEvent.of(events_pb2.Event(event_id="e", chain="251125184500_698", call=call))
    assert (view.started_at, view.answered_at, view.ended_at) == (1764085500, 1764085503.5, 1764085568)
    assert (view.caller_name, view.user_name, view.queue_name) == ("Sergey Ivanov", "Ivan Petrov", "Sales")
    missed = CrmEvent.of(
        events_pb2.Event(
            event_id="m",
            chain="c",
            call=events_pb2.CallEvent(type=events_pb2.CALL_EVENT_TYPE_ENDED, call_id="251125184500_698-0"),
        )
    )
    assert missed.answered_at is None and missed.started_at is None
    dialing = CrmEvent.of(
        events_pb2.Event(
            event_id="d",
            chain="c",
            call=events_pb2.CallEvent(
                type=events_pb2.CALL_EVENT_TYPE_DIALING,
                call_id="251125184500_699-0",
                direction=common_pb2.DIRECTION_OUTGOING,
            ),
        )
    )
    assert (dialing.kind, dialing.direction, dialing.link) == ("dialing", "out", 0)
