"""The fake Zammad answers as Zammad's CTI controller and caller log do (simulator/crm/zammad.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tcxhooks.simulator.crm.zammad import FakeZammad
from tests.crm.portal import serve


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def zammad(clock: Clock) -> AsyncIterator[FakeZammad]:
    fake = FakeZammad(token="tok", blocked_callers={"4930999"}, routing_table=[("49*", "4930111")], clock=clock)
    runner, URLS[id(fake)] = await serve(fake.app())
    yield fake
    await runner.cleanup()


URLS: dict[int, str] = {}


async def post(fake: FakeZammad, body: dict[str, object], token: str = "tok") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{URLS[id(fake)]}/api/v1/cti/{token}", json=body)


def call(event: str, **extra: object) -> dict[str, object]:
    return {"event": event, "from": "4930123", "to": "4930555", "direction": "in", "callId": "c1", **extra}


async def test_an_answered_inbound_call_is_one_row_with_its_waiting_and_talking_time(
    zammad: FakeZammad, clock: Clock
) -> None:
    assert (await post(zammad, call("newCall", user=["Anna", "Boris"], queue="Sales"))).json() == {}
    clock.now += 7
    assert (await post(zammad, call("answer", user="Boris", answeringNumber="102"))).json() == {}
    clock.now += 60
    assert (await post(zammad, call("hangup", cause="normalClearing", answeringNumber="102"))).json() == {}
    row = zammad.log["c1"]
    assert (row.state, row.done, row.to_comment, row.queue) == ("hangup", True, "Boris", "Sales")
    assert (row.duration_waiting_time, row.duration_talking_time, row.comment) == (7, 60, "normalClearing")


async def test_an_inbound_call_hung_up_while_ringing_is_missed_unless_forwarded(zammad: FakeZammad) -> None:
    await post(zammad, call("newCall", user=["Anna"]))
    await post(zammad, call("hangup", cause="cancel"))
    await post(zammad, call("newCall", callId="c2"))
    await post(zammad, call("hangup", callId="c2", cause="forwarded"))
    assert zammad.log["c1"].done is False
    assert zammad.log["c2"].done is True


async def test_errors_are_zammads_own(zammad: FakeZammad) -> None:
    await post(zammad, call("newCall"))
    again = await post(zammad, call("newCall"))
    assert (again.status_code, again.json()["error"]) == (500, "Object already exists!")
    unknown = await post(zammad, call("answer", callId="nope"))
    assert unknown.status_code == 500 and "Please contact your administrator" in unknown.json()["error"]
    bad_direction = await post(zammad, call("newCall", direction="check", callId="probe"))
    assert (bad_direction.status_code, bad_direction.json()) == (422, {"error": "Invalid direction!"})
    assert "probe" not in zammad.log
    bad_token = await post(zammad, call("newCall", callId="c3"), token="wrong")
    assert bad_token.status_code == 401 and "c3" not in zammad.log


async def test_a_disabled_or_unconfigured_integration_refuses_before_the_token(zammad: FakeZammad) -> None:
    zammad.configured = False
    reply = await post(zammad, call("newCall"), token="wrong")
    assert (reply.status_code, reply.json()["error"]) == (422, "Feature not configured, please contact your admin!")
    zammad.enabled = False
    reply = await post(zammad, call("newCall"))
    assert (reply.status_code, reply.json()["error"]) == (
        422,
        "Feature is disabled, please contact your administrator!",
    )
    assert zammad.log == {}


async def test_a_blocked_caller_is_logged_and_rejected(zammad: FakeZammad) -> None:
    reply = await post(zammad, call("newCall", **{"from": "4930999"}))
    assert reply.json() == {"action": "reject", "reason": "busy"}
    assert zammad.log["c1"].state == "newCall"


async def test_an_outbound_caller_id_rule_rewrites_from_and_answers_dial(zammad: FakeZammad) -> None:
    reply = await post(
        zammad,
        {"event": "newCall", "from": "101", "to": "4917012345", "direction": "out", "callId": "o1", "user": "Anna"},
    )
    assert reply.json() == {"action": "dial", "caller_id": "4930111", "number": "4917012345"}
    assert (zammad.log["o1"].from_number, zammad.log["o1"].done) == ("4930111", True)


async def test_an_answer_after_the_hangup_is_ignored(zammad: FakeZammad, clock: Clock) -> None:
    await post(zammad, call("newCall"))
    clock.now += 5
    await post(zammad, call("hangup", cause="cancel"))
    assert (await post(zammad, call("answer", user="Anna"))).status_code == 200
    assert zammad.log["c1"].state == "hangup" and zammad.log["c1"].start_at is None


async def test_form_data_with_user_arrays_and_call_id_spelling(zammad: FakeZammad) -> None:
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{URLS[id(zammad)]}/api/v1/cti/tok",
            data={
                "event": "newCall",
                "from": "4930123",
                "to": "4930555",
                "direction": "in",
                "call_id": "f1",
                "user[]": ["Anna", "Boris"],
            },
        )
    assert reply.json() == {}
    assert zammad.log["f1"].to_comment == "Anna, Boris"


async def test_requests_above_the_limit_get_429_and_change_nothing(clock: Clock) -> None:
    fake = FakeZammad(token="tok", limit=2, clock=clock)  # the clock stands still: one second for all
    runner, URLS[id(fake)] = await serve(fake.app())
    try:
        statuses = [(await post(fake, call("newCall", callId=f"r{i}"))).status_code for i in range(4)]
    finally:
        await runner.cleanup()
    assert statuses == [200, 200, 429, 429]
    assert sorted(fake.log) == ["r0", "r1"] and fake.bucket.refused == 2


async def test_the_fake_api_shows_requests_and_the_log_and_injects_failures(zammad: FakeZammad) -> None:
    async with httpx.AsyncClient(base_url=URLS[id(zammad)]) as client:
        await client.post("/fake/fail", json={"method": "answer", "status": 500, "after": True})
        await post(zammad, call("newCall"))
        lost = await post(zammad, call("answer", user="Anna"))
        assert lost.status_code == 500 and zammad.log["c1"].state == "answer"  # done, answer lost
        await client.post("/fake/settings", json={"blocked_callers": ["4930123"]})
        assert (await post(zammad, call("newCall", callId="c2"))).json()["action"] == "reject"
        journal = (await client.get("/fake/calls")).json()["calls"]
        assert [(c["method"], c["status"]) for c in journal] == [("newCall", 200), ("answer", 500), ("newCall", 200)]
        assert [row["call_id"] for row in (await client.get("/fake/state")).json()["log"]] == ["c1", "c2"]
