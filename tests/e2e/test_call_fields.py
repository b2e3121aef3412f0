"""The contract's times and names end to end (docs/webhooks.md §3): the simulator plays an inbound queue call and
a blind transfer, the real monitor and dispatcher turn them into webhooks, and two receivers (form and json) get
the names, the times in `[pbx] timezone` and the transfer's parties, the same in both formats."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.receiver import Receiver, Request
from tests.helpers.contract import EXTRAS, legacy
from tests.helpers.services import stop, write_config
from tests.monitor.conftest import Monitor, start_pbx

FAST = {"ring_seconds": 1, "talk_seconds": 2, "wait_seconds": 1}
MOSCOW = dt.timedelta(hours=3)


class Stack:
    def __init__(self, monitor: Monitor, json_crm: Receiver) -> None:
        self.monitor, self.json_crm = monitor, json_crm

    def play(self, scenario: str, webhooks: int, **params: Any) -> tuple[list[Request], list[Request]]:
        """The form and json webhooks of one played call, in the order they came."""
        number = self.monitor.pbx.play(scenario, **{**FAST, **params})["call_number"]
        self.monitor.pbx.wait_done(number)
        return _wait(self.monitor.crm, number, webhooks), _wait(self.json_crm, number, webhooks)


def _wait(crm: Receiver, number: int, count: int) -> list[Request]:
    """The `count` webhooks of call `number` (the receiver's other calls aside), and no more a moment later."""
    deadline = time.monotonic() + 30
    while len(_of(crm, number)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    found = _of(crm, number)
    assert len(found) == count, [r.body for r in found]
    return found


def _of(crm: Receiver, number: int) -> list[Request]:
    def call_id(r: Request) -> str:
        return str(r.json()["data"].get("id", "") if r.body.startswith(b"{") else r.form().get("id", ""))

    return [r for r in list(crm.requests) if f"_{number}-" in call_id(r)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("fields")
    sim, pbx = start_pbx(folder)
    form_crm, json_crm = Receiver().start(), Receiver().start()
    config = write_config(
        folder,
        pbx=pbx.section(timezone="Europe/Moscow"),
        events={"language": "en"},
        recordings={"enabled": "false"},
        dispatcher={"retry_schedule": "1s"},
        webhook={"url": form_crm.url},
        **{"webhook:json": {"url": json_crm.url, "format": "json"}},
    )
    monitor = Monitor(pbx, form_crm, config, folder)
    try:
        monitor.start("dispatcher")
        monitor.start("monitor")
        yield Stack(monitor, json_crm)
    finally:
        for proc in monitor.procs.values():
            stop(proc)
        stop(sim)
        form_crm.stop()
        json_crm.stop()


def _extras(request: Request) -> dict[str, str]:
    legacy(request.form_items())  # the legacy fields first, then only the extras
    return {k: v for k, v in request.form_items() if k in EXTRAS}


def _moment(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    assert when.utcoffset() == MOSCOW, text
    return when


def _same_in_json(form: list[Request], got_json: list[Request]) -> None:
    """Each json webhook carries the same extras, with the same values, as its form twin."""
    for f, j in zip(form, got_json, strict=True):
        data = j.json()["data"]
        assert data["id"] == f.form()["id"]
        assert {k: v for k, v in data.items() if k in EXTRAS} == _extras(f)


def test_an_inbound_queue_call_names_everyone_and_times_every_step(stack: Stack) -> None:
    form, got_json = stack.play("queue_answered", 5, caller_name="Acme Ltd")
    events = [(r.form()["event"], r.form()["user"]) for r in form]
    assert events == [
        ("ringing", "800"),
        ("ringing", "101"),
        ("ringing", "102"),
        ("hangupincoming", "102"),
        ("incoming", "102"),
    ]
    extras = [_extras(r) for r in form]
    assert {(e["caller_name"], e["queue"], e["queue_name"]) for e in extras} == {("Acme Ltd", "800", "Sales")}
    assert [e["user_name"] for e in extras] == [
        "Sales",
        "Ivan Petrov",
        "Maria Sidorova",
        "Maria Sidorova",
        "Maria Sidorova",
    ]
    # one start for the whole call: the call id's date-time, in the same zone
    [started] = {e["started_at"] for e in extras}
    stamp = form[0].form()["id"].split("_")[0]
    local = dt.datetime.strptime(stamp, "%y%m%d%H%M%S").replace(tzinfo=dt.timezone(MOSCOW))
    assert abs((_moment(started) - local).total_seconds()) < 1
    answer, end = extras[3], extras[4]
    assert "answered_at" not in extras[0] and "ended_at" not in answer
    assert answer["answered_at"] == end["answered_at"] == answer["event_at"]
    assert _moment(started) <= _moment(answer["answered_at"]) < _moment(end["ended_at"]) == _moment(end["event_at"])
    talk = (_moment(end["ended_at"]) - _moment(answer["answered_at"])).total_seconds()
    assert abs(talk - int(form[4].form()["duration"])) <= 1
    assert form[4].form()["callback"] == "false" and got_json[4].json()["data"]["callback"] is False
    _same_in_json(form, got_json)


def test_a_blind_transfer_names_where_the_call_went_and_where_it_came_from(stack: Stack) -> None:
    form, got_json = stack.play("blind_transfer", 6)
    by_event = [(r.form()["event"], r.form()["user"], r.form()["id"][-1]) for r in form]
    assert by_event == [
        ("ringing", "101", "0"),
        ("hangupincoming", "101", "1"),
        ("ringing", "102", "2"),
        ("incoming", "101", "1"),
        ("hangupincoming", "102", "2"),
        ("incoming", "102", "2"),
    ]
    extras = [_extras(r) for r in form]
    first_end = extras[3]
    assert (form[3].form()["transfer"], first_end["transferred_to"], first_end["transferred_to_name"]) == (
        "true",
        "102",
        "Maria Sidorova",
    )
    assert all("transferred_from" not in e for e in [*extras[:2], first_end])
    for target in (extras[2], extras[4], extras[5]):
        assert (target["transferred_from"], target["transferred_from_name"], target["user_name"]) == (
            "101",
            "Ivan Petrov",
            "Maria Sidorova",
        )
        assert "transferred_to" not in target
    assert form[4].form()["trtype"] == "Blind"
    assert len({e["started_at"] for e in extras}) == 1
    assert _moment(first_end["ended_at"]) <= _moment(extras[4]["answered_at"]) + dt.timedelta(seconds=1)
    _same_in_json(form, got_json)
