"""The Zammad adapter against the fake Zammad: what its caller log shows for each scenario, and the
`tcxhooks check` probe. The leg state lives in the dispatcher's store (SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tcxhooks.dispatcher.crm import LegStore, SinkDeps
from tcxhooks.dispatcher.crm.zammad import ZammadOptions, ZammadSettings, ZammadSink
from tcxhooks.simulator.crm.zammad import FakeZammad
from tests.crm.portal import serve

from .scenarios import CHAIN, SCENARIOS, scenarios

TOKEN = "cti-token-0123456789"


class Zammad(FakeZammad):
    cti_url = ""  # where the adapter posts, once served


@pytest.fixture
async def zammad() -> AsyncIterator[Zammad]:
    fake = Zammad(token=TOKEN, blocked_callers={"74990000000"})
    runner, url = await serve(fake.app())
    fake.cti_url = f"{url}/api/v1/cti/{TOKEN}"
    yield fake
    await runner.cleanup()


def make_sink(legs: LegStore, url: str) -> ZammadSink:
    settings = ZammadSettings("zammad", url=url, options=ZammadOptions(user_map={"102": "boris"}))
    return ZammadSink(settings, SinkDeps(legs, "", None, 30))


@pytest.fixture
async def sink(legs: LegStore, zammad: Zammad) -> AsyncIterator[ZammadSink]:
    sink = make_sink(legs, zammad.cti_url)
    yield sink
    await sink.close()


ROWS = {  # scenario → (state, done, to_comment, comment, Zammad's events in order)
    "inbound answered": ("hangup", True, "101", "normalClearing", ["newCall", "answer", "hangup"]),
    "queue ring-all": ("hangup", True, "102", "normalClearing", ["newCall", "answer", "hangup"]),
    "queue abandoned with callback": ("hangup", False, "800", "cancel", ["newCall", "hangup"]),
    "blind transfer": ("hangup", True, "101", "normalClearing", ["newCall", "answer", "hangup"]),
    "attended transfer": ("hangup", True, "101", "normalClearing", ["newCall", "answer", "hangup"]),
    "outbound answered": ("hangup", True, None, "normalClearing", ["newCall", "answer", "hangup"]),
    "outbound not answered": ("hangup", True, None, "noAnswer", ["newCall", "hangup"]),
}


@pytest.mark.parametrize("scenario", list(ROWS))
async def test_each_scenario_leaves_one_right_caller_log_row(sink: ZammadSink, zammad: Zammad, scenario: str) -> None:
    for event in SCENARIOS[scenario]:
        reply = await sink.deliver(event)
        assert reply.verdict == "delivered", reply
    assert list(zammad.log) == [CHAIN]
    row = zammad.log[CHAIN]
    assert (row.state, row.done, row.to_comment, row.comment, row.history) == ROWS[scenario]
    assert [c.method for c in zammad.journal.received] == row.history  # nothing else was sent


async def test_redelivering_every_event_adds_no_row_and_no_second_answer(sink: ZammadSink, zammad: Zammad) -> None:
    for event in SCENARIOS["blind transfer"]:
        await sink.deliver(event)
    for event in SCENARIOS["blind transfer"]:
        assert (await sink.deliver(event)).verdict == "delivered"
    assert zammad.log[CHAIN].history == ["newCall", "answer", "hangup"]


async def test_after_a_lost_state_the_retried_newcall_counts_as_done(
    legs: LegStore, zammad: Zammad, store_url: str
) -> None:
    first, second = make_sink(legs, zammad.cti_url), make_sink(legs, zammad.cti_url)
    try:
        ringing, answered, ended = SCENARIOS["inbound answered"][:3]
        await first.deliver(ringing)
        await legs.put("zammad", CHAIN, {})  # as if the dispatcher died before it stored Zammad's answer
        for event in (ringing, answered, ended):
            assert (await second.deliver(event)).verdict == "delivered"
    finally:
        await first.close()
        await second.close()
    assert zammad.log[CHAIN].history == ["newCall", "answer", "hangup"]


async def test_a_call_zammad_never_saw_gets_its_newcall_before_the_answer(sink: ZammadSink, zammad: Zammad) -> None:
    await sink.deliver(SCENARIOS["inbound answered"][0])
    zammad.log.clear()  # Zammad lost the row (restored from a backup, say)
    reply = await sink.deliver(SCENARIOS["inbound answered"][1])
    assert reply.verdict == "delivered"
    assert zammad.log[CHAIN].history == ["newCall", "answer"]
    assert "newCall first" not in reply.summary


async def test_a_blocked_caller_is_rejected_and_hung_up_at_once(sink: ZammadSink, zammad: Zammad) -> None:
    events = scenarios(chain="251125184600_699")["inbound answered"]
    for event in events:
        if event.HasField("call"):
            event.call.caller_id = "74990000000"
        assert (await sink.deliver(event)).verdict == "delivered"
    row = zammad.log["251125184600_699"]
    assert (row.history, row.comment) == (["newCall", "hangup"], "busy")


async def test_zammad_errors_become_verdicts_and_the_token_never_shows(legs: LegStore, zammad: Zammad) -> None:
    wrong = make_sink(legs, zammad.cti_url.replace(TOKEN, "not-the-token"))
    try:
        reply = await wrong.deliver(SCENARIOS["inbound answered"][0])
    finally:
        await wrong.close()
    assert (reply.verdict, reply.status) == ("gone", 401)
    zammad.enabled = False
    sink = make_sink(legs, zammad.cti_url)
    try:
        disabled = await sink.deliver(SCENARIOS["inbound answered"][0])
    finally:
        await sink.close()
    assert disabled.verdict == "gone" and "Feature is disabled" in disabled.error
    assert TOKEN not in reply.error + reply.summary + disabled.error + disabled.summary


async def test_rate_limited_requests_are_retried_and_nothing_is_lost(legs: LegStore) -> None:
    now = [10_000.0]
    zammad = FakeZammad(token=TOKEN, limit=1, clock=lambda: now[0])  # a proxy letting one request a second
    runner, url = await serve(zammad.app())
    sink = make_sink(legs, f"{url}/api/v1/cti/{TOKEN}")
    verdicts = []
    try:
        for event in SCENARIOS["inbound answered"][:3]:  # as the outbox does: an event again until delivered
            while (reply := await sink.deliver(event)).verdict != "delivered":
                verdicts.append((reply.verdict, reply.status))
                now[0] += 1  # the fake's next second
    finally:
        await sink.close()
        await runner.cleanup()
    assert verdicts and set(verdicts) == {("retry", 429)}
    assert zammad.log[CHAIN].history == ["newCall", "answer", "hangup"]


async def test_check_and_ping_probe_without_writing_a_row(sink: ZammadSink, zammad: Zammad, legs: LegStore) -> None:
    assert (await sink.ping()).verdict == "delivered"
    lines = await sink.check()
    assert [(line.ok, line.item) for line in lines] == [(True, "zammad cti")]
    assert zammad.log == {}
    zammad.configured = False
    assert "save its settings" in (await sink.check())[0].fix
    zammad.configured = True
    wrong = make_sink(legs, zammad.cti_url.replace(TOKEN, "nope"))
    try:
        line = (await wrong.check())[0]
        pinged = await wrong.ping()
    finally:
        await wrong.close()
    assert not line.ok and "401" in line.detail
    assert (pinged.verdict, pinged.status) == ("gone", 401) and "nope" not in pinged.error + pinged.summary
