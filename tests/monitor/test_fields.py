"""The call events' times, names, queue, group and transfer parties (docs/webhooks.md §3), as the monitor publishes
them over gRPC: the simulator's scenarios of docs/webhooks.md §6 played at once, the real monitor process, and a
dispatcher that records every CallEvent it is given."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import httpx
import pytest

from tcxhooks.v1 import common_pb2, dispatcher_service_pb2, dispatcher_service_pb2_grpc, events_pb2
from tests.helpers.net import free_port
from tests.helpers.services import read_config, start, stop, wait_healthy, write_config

from .conftest import Pbx, start_pbx

E = events_pb2
FAST = {"ring_seconds": 1, "talk_seconds": 2, "wait_seconds": 1}
ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "inbound_answered": ("inbound_answered", {"caller_name": "Acme Ltd", "caller": "79165550001"}),
    "queue_answered": ("queue_answered", {}),
    "queue_abandoned_callback": ("queue_abandoned_callback", {"caller": "79165550002"}),
    "blind_transfer": ("blind_transfer", {}),
    "attended_transfer": ("attended_transfer", {}),
    "outbound_answered": ("outbound_answered", {}),
    "ivr_to_queue": ("ivr_to_queue", {}),
    "ring_group": ("ring_group", {}),
    "transfer_to_queue": ("transfer_to_queue", {}),
    "transfer_to_external": ("transfer_to_external", {"callee": "79037770011"}),
    "internal_call": ("internal_call", {}),
}


class RecordingDispatcher(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    """Stores nothing, acknowledges everything, and keeps the call events in the order they came."""

    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []
        self.lock = threading.Lock()

    def _take(self, events: list[events_pb2.Event]) -> None:
        with self.lock:
            seen = {e.event_id for e in self.events}
            self.events.extend(e for e in events if e.HasField("call") and e.event_id not in seen)

    def Publish(self, request: Any, context: Any) -> Any:
        self._take([request.event])
        return dispatcher_service_pb2.PublishResponse(sequence=1, deliveries=1)

    def PublishBatch(self, request: Any, context: Any) -> Any:
        self._take(list(request.events))
        return dispatcher_service_pb2.PublishBatchResponse(
            outcomes=[
                dispatcher_service_pb2.PublishOutcome(stored=dispatcher_service_pb2.PublishResponse(sequence=1))
                for _ in request.events
            ]
        )

    def of(self, number: int) -> list[events_pb2.CallEvent]:
        with self.lock:
            return [e.call for e in self.events if e.chain.endswith(f"_{number}")]


class Run:
    def __init__(self, dispatcher: RecordingDispatcher, numbers: dict[str, int]) -> None:
        self.dispatcher, self.numbers = dispatcher, numbers

    def calls(self, row: str) -> list[events_pb2.CallEvent]:
        return self.dispatcher.of(self.numbers[row])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("fields")
    sim, pbx = start_pbx(folder)
    dispatcher = RecordingDispatcher()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(dispatcher, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = write_config(
        folder,
        services={"dispatcher": f"127.0.0.1:{port}"},
        pbx=pbx.section(reconcile_delay="0.5"),
        events={"language": "en", "internal_calls": "true"},
        recordings={"enabled": "false"},
    )
    monitor = start(["monitor", "-c", str(config)], folder / "monitor.log", env={"TCXH_METRICS_PORT": str(free_port())})
    try:
        wait_healthy(read_config(config)["services"]["monitor"], timeout=60)
        numbers = {row: pbx.play(name, **{**FAST, **params})["call_number"] for row, (name, params) in ROWS.items()}
        settle(pbx, dispatcher, numbers)
        numbers.update(outage(pbx, dispatcher))
        yield Run(dispatcher, numbers)
    finally:
        stop(monitor)
        server.stop(0)
        stop(sim)


def settle(pbx: Pbx, dispatcher: RecordingDispatcher, numbers: dict[str, int]) -> None:
    """Every call played, and its last event (its last call.ended) published."""
    for number in numbers.values():
        pbx.wait_done(number)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(any(c.type == E.CALL_EVENT_TYPE_ENDED for c in dispatcher.of(n)) for n in numbers.values()):
            break
        time.sleep(0.2)
    time.sleep(3)  # later ends (a transfer's second leg) and anything extra


def outage(pbx: Pbx, dispatcher: RecordingDispatcher) -> dict[str, int]:
    """Calls that ring and end while the Call Control socket is down: the monitor sends their ends from the call
    log once the socket is back (services/monitor/recover.py, services/monitor/recovered.py). Returns their call numbers by row."""
    faults = f"{pbx.url}/sim/fail"
    httpx.post(faults, json={"prefix": "/callcontrol/ws", "status": 503, "count": 1000}, timeout=5).raise_for_status()
    pbx.drop()
    numbers = {
        "recovered": pbx.play("inbound_answered", caller="79165550003", caller_name="Acme Ltd", **FAST),
        "recovered_transfer": pbx.play("blind_transfer", **FAST),
    }
    for reply in numbers.values():
        pbx.wait_done(reply["call_number"])
    httpx.post(faults, json={"prefix": "/callcontrol/ws", "status": 503, "count": 0}, timeout=5).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(dispatcher.of(r["call_number"]) for r in numbers.values()):
        time.sleep(0.2)
    time.sleep(1)  # a call's later ends
    return {row: int(reply["call_number"]) for row, reply in numbers.items()}


def only(events: list[events_pb2.CallEvent], kind: int, user: str) -> events_pb2.CallEvent:
    found = [e for e in events if e.type == kind and e.user == user]
    assert len(found) == 1, (kind, user, events)
    return found[0]


def test_every_event_has_the_call_start_and_ends_have_their_answer_and_end(run: Run) -> None:
    for row in ROWS:
        events = run.calls(row)
        assert events, row
        starts = {e.started_time.ToNanoseconds() for e in events}
        assert len(starts) == 1 and min(starts) > 0, (row, events)
        for e in events:
            if e.type == E.CALL_EVENT_TYPE_ANSWERED:
                assert e.answered_time.ToNanoseconds() >= e.started_time.ToNanoseconds(), (row, e)
            if e.type == E.CALL_EVENT_TYPE_ENDED:
                assert e.HasField("ended_time"), (row, e)
                answered = e.finish_type == common_pb2.FINISH_TYPE_OK
                assert e.HasField("answered_time") == answered, (row, e)
                if answered:
                    assert e.answered_time.ToNanoseconds() <= e.ended_time.ToNanoseconds(), (row, e)
            elif e.type != E.CALL_EVENT_TYPE_ANSWERED:
                assert not e.HasField("answered_time") and not e.HasField("ended_time"), (row, e)


def test_inbound_answered_names_the_caller_and_the_user(run: Run) -> None:
    events = run.calls("inbound_answered")
    assert {(e.caller_name, e.user, e.user_name) for e in events} == {("Acme Ltd", "101", "Ivan Petrov")}
    assert all(not e.queue and not e.group and not e.transferred_to and not e.transferred_from for e in events)
    assert (
        only(events, E.CALL_EVENT_TYPE_ANSWERED, "101").answered_time
        == only(events, E.CALL_EVENT_TYPE_ENDED, "101").answered_time
    )


def test_a_caller_without_a_name_has_none(run: Run) -> None:
    """The simulator's caller shows its number as its name (as 3CX does without a contact): no name."""
    assert {e.caller_name for e in run.calls("queue_answered")} == {""}


def test_queue_calls_carry_the_queue_and_its_name_on_every_event(run: Run) -> None:
    for row in ("queue_answered", "queue_abandoned_callback"):
        events = run.calls(row)
        assert {(e.queue, e.queue_name) for e in events} == {("800", "Sales")}, row
    answered = run.calls("queue_answered")
    assert only(answered, E.CALL_EVENT_TYPE_RINGING, "800").user_name == "Sales"
    assert only(answered, E.CALL_EVENT_TYPE_ANSWERED, "102").user_name == "Maria Sidorova"
    assert only(answered, E.CALL_EVENT_TYPE_ENDED, "102").callback_state == common_pb2.CALLBACK_STATE_NOT_ORDERED
    missed = only(run.calls("queue_abandoned_callback"), E.CALL_EVENT_TYPE_ENDED, "800")
    assert (missed.user_name, missed.callback, missed.callback_state) == (
        "Sales",
        True,
        common_pb2.CALLBACK_STATE_ORDERED,
    )


def test_the_ring_group_or_ivr_the_call_passed(run: Run) -> None:
    group = run.calls("ring_group")
    assert {(e.group, e.group_name) for e in group} == {("900", "Office")}
    assert only(group, E.CALL_EVENT_TYPE_ENDED, "103").user_name == "Oleg Smirnov"
    ivr = run.calls("ivr_to_queue")
    assert {(e.group, e.group_name) for e in ivr} == {("700", "Main menu")}
    assert {(e.queue, e.queue_name) for e in ivr if e.user != "700"} == {("800", "Sales")}
    assert only(ivr, E.CALL_EVENT_TYPE_RINGING, "700").user_name == "Main menu"


@pytest.mark.parametrize("row", ["blind_transfer", "attended_transfer"])
def test_a_transfer_names_where_the_call_went_and_where_it_came_from(run: Run, row: str) -> None:
    events = run.calls(row)
    first = only(events, E.CALL_EVENT_TYPE_ENDED, "101")
    assert (first.transfer, first.transferred_to, first.transferred_to_name) == (True, "102", "Maria Sidorova")
    assert not first.transferred_from
    for e in [e for e in events if e.user == "102"]:
        assert (e.transferred_from, e.transferred_from_name) == ("101", "Ivan Petrov"), e
        assert not e.transferred_to, e
    assert len([e for e in events if e.user == "102"]) >= 2


def test_a_transfer_to_a_queue_names_the_queue_not_its_agents(run: Run) -> None:
    to_queue = only(run.calls("transfer_to_queue"), E.CALL_EVENT_TYPE_ENDED, "101")
    assert (to_queue.transferred_to, to_queue.transferred_to_name) == ("800", "Sales")
    assert only(run.calls("transfer_to_queue"), E.CALL_EVENT_TYPE_ANSWERED, "102").transferred_from == "101"


def test_a_transfer_to_an_outside_number_names_that_number(run: Run) -> None:
    """Call Control never shows the outside number; XAPI ActiveCalls' Callee does once the call went on there."""
    events = run.calls("transfer_to_external")
    out = only(events, E.CALL_EVENT_TYPE_ENDED, "101")
    assert (out.transfer, out.transferred_to, out.transferred_to_name) == (True, "79037770011", "")
    assert all(not e.transferred_to for e in events if e is not out), events


def test_an_end_recovered_from_the_call_log_names_the_caller(run: Run) -> None:
    """The call log's SourceDisplayName: the same name Call Control would have shown."""
    [end] = run.calls("recovered")
    assert (end.type, end.user, end.caller_id, end.caller_name, end.user_name) == (
        E.CALL_EVENT_TYPE_ENDED,
        "101",
        "79165550003",
        "Acme Ltd",
        "Ivan Petrov",
    )


def test_a_transfer_recovered_from_the_call_log_names_its_parties(run: Run) -> None:
    ends = run.calls("recovered_transfer")
    assert [(e.user, e.transfer, e.transferred_to, e.transferred_to_name, e.transferred_from) for e in ends] == [
        ("101", True, "102", "Maria Sidorova", ""),
        ("102", False, "", "", "101"),
    ]


def test_outbound_and_internal_calls_name_their_parties(run: Run) -> None:
    out = run.calls("outbound_answered")
    assert {(e.user, e.user_name) for e in out} == {("101", "Ivan Petrov")}
    internal = run.calls("internal_call")
    assert {e.caller_name for e in internal} == {"Ivan Petrov"}
    assert only(internal, E.CALL_EVENT_TYPE_ANSWERED, "102").user_name == "Maria Sidorova"
