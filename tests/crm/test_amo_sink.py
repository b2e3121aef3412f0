"""The amoCRM adapter against the fake amoCRM: what the account holds after each scenario, after a
lost answer, under its rate limit, with OAuth, and what `tcxhooks check` says."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tcxhooks.dispatcher.crm import Call, CrmError, LegStore, SinkDeps
from tcxhooks.dispatcher.crm.amocrm import AmoOptions, AmoSettings, AmoSink
from tcxhooks.dispatcher.crm.amocrm.client import AmoApi
from tcxhooks.simulator.crm.amocrm import FakeAmo
from tcxhooks.simulator.crm.common import Failure
from tcxhooks.v1 import events_pb2
from tests.crm.portal import serve

from .scenarios import CALLER, CHAIN, analytics, ended, recording, scenarios

TOKEN = "long-lived-amo-token-0123456789"


def fresh(chain: str = CHAIN) -> dict[str, list[events_pb2.Event]]:
    """The scenarios of a call that started now: real-time steps go out only for fresh events."""
    return scenarios(chain=chain, start=time.time())


OPTIONS = AmoOptions(user_map={"101": 501, "102": 502}, default_user=501)


class Amo(FakeAmo):
    url = ""  # once served


def account(fake: Amo) -> Amo:
    fake.account.add_user(501, "Anna Petrova")
    fake.account.add_user(502, "Boris Ivanov")
    fake.account.add_contact("Ivan Sidorov", "+7 916 123-45-67", active_leads=1)
    return fake


@contextlib.asynccontextmanager
async def served(fake: Amo) -> AsyncIterator[Amo]:
    runner, fake.url = await serve(fake.app())
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def amo() -> AsyncIterator[Amo]:
    async with served(account(Amo(long_lived_token=TOKEN))) as fake:
        yield fake


def make_sink(legs: LegStore, url: str, options: AmoOptions = OPTIONS, **settings: Any) -> AmoSink:
    settings.setdefault("token", TOKEN)
    return AmoSink(AmoSettings("amo", url=url, options=options, **settings), SinkDeps(legs, "", None, 30))


@pytest.fixture
async def sink(legs: LegStore, amo: Amo) -> AsyncIterator[AmoSink]:
    sink = make_sink(legs, amo.url)
    yield sink
    await sink.close()


async def deliver_all(sink: AmoSink, events: list[events_pb2.Event]) -> None:
    """As the outbox does for one chain: each event again until delivered, in order."""
    for event in events:
        for _ in range(50):
            reply = await sink.deliver(event)
            if reply.verdict == "delivered":
                break
            assert reply.verdict == "retry", reply
        else:
            raise AssertionError(f"{event.event_id} never delivered")


def calls(fake: Amo) -> list[tuple[str, int, str, str, str]]:
    return [
        (c.body["uniq"], c.body["call_status"], c.body["direction"], c.entity_type, c.body.get("link", ""))
        for c in fake.account.calls
    ]


async def test_inbound_answered_one_call_with_its_recording_a_notification_and_the_transcript(
    sink: AmoSink, amo: Amo
) -> None:
    await deliver_all(sink, fresh()["inbound answered"])
    lead = amo.account.contacts[min(amo.account.contacts)].lead_ids[0]
    assert calls(amo) == [(f"{CHAIN}-1", 4, "inbound", "leads", f"https://media.example/r/{CHAIN}-1/1.mp3")]
    assert [(e.phone_number, e.users) for e in amo.account.phone_events] == [(CALLER, [501])]
    notes = [(n.entity_id, n.note_type) for n in amo.account.notes]
    assert notes == [(lead, "call_in"), (lead, "common")]
    assert "The caller asked where the order is." in amo.account.notes[1].params["text"]


async def test_a_missed_queue_call_status_6_and_a_call_back_task(sink: AmoSink, amo: Amo) -> None:
    await deliver_all(sink, fresh()["queue abandoned with callback"])
    assert calls(amo) == [(f"{CHAIN}-0", 6, "inbound", "leads", "")]
    assert [(t.entity_type, t.responsible_user_id) for t in amo.account.tasks] == [("leads", 501)]


@pytest.mark.parametrize("scenario", ["blind transfer", "attended transfer"])
async def test_transfers_log_each_leg_once_with_its_own_recording(sink: AmoSink, amo: Amo, scenario: str) -> None:
    await deliver_all(sink, fresh()[scenario])
    assert [(uniq, status, link.split("/")[-2]) for uniq, status, _, _, link in calls(amo)] == [
        (f"{CHAIN}-1", 4, f"{CHAIN}-1"),
        (f"{CHAIN}-2", 4, f"{CHAIN}-2"),
    ]
    assert [c.body["responsible_user_id"] for c in amo.account.calls] == [501, 502]


async def test_outbound_answered_and_not(sink: AmoSink, amo: Amo) -> None:
    await deliver_all(sink, fresh()["outbound answered"])
    await deliver_all(sink, fresh("251125184600_699")["outbound not answered"])
    assert [(u, s, d) for u, s, d, _, _ in calls(amo)] == [
        (f"{CHAIN}-1", 4, "outbound"),
        ("251125184600_699-0", 6, "outbound"),
    ]
    assert amo.account.tasks == []


async def test_an_unknown_caller_goes_to_unsorted_with_the_task_on_its_lead(sink: AmoSink, amo: Amo) -> None:
    events = fresh("251125184700_700")["queue abandoned with callback"]
    for event in events:
        event.call.caller_id = "74990001122"
    await deliver_all(sink, events)
    assert amo.account.calls == []
    [entry] = amo.account.unsorted
    assert (entry.source_uid, entry.metadata["from"]) == ("251125184700_700-0", "74990001122")
    assert [(t.entity_type, t.entity_id) for t in amo.account.tasks] == [("leads", entry.lead_id)]


async def test_a_recording_that_never_comes_does_not_hold_the_call_back(sink: AmoSink, amo: Amo) -> None:
    await deliver_all(sink, fresh()["inbound answered"][:3])
    assert amo.account.calls == []
    assert await sink.sweep(now=time.time() + 60) == 0  # still within recording_wait
    assert await sink.sweep(now=time.time() + OPTIONS.recording_wait + 1) == 1
    assert calls(amo) == [(f"{CHAIN}-1", 4, "inbound", "leads", "")]
    # the recording comes after all: a note, no second call
    await deliver_all(sink, [recording(1, start=time.time()), analytics(1, start=time.time())])
    assert len(amo.account.calls) == 1
    texts = [n.params.get("text", "") for n in amo.account.notes if n.note_type == "common"]
    assert texts[0] == f"Запись звонка {CHAIN}-1: https://media.example/r/{CHAIN}-1/1.mp3"
    assert await sink.sweep(now=time.time() + 10 * OPTIONS.recording_wait) == 0


class LosesAnswers:
    """An AmoApi whose create requests reach amoCRM but whose answers are lost (as after a crash)."""

    def __init__(self, inner: AmoApi) -> None:
        self.inner = inner

    async def call(self, call: Call) -> Any:
        result = await self.inner.call(call)
        if call.method.startswith("POST") and call.step != "notify":
            raise CrmError(f"amo {call.step}: no answer from the CRM (timeout)", code="network")
        return result


async def test_a_create_whose_answer_was_lost_is_found_not_repeated(
    sink: AmoSink, amo: Amo, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sink.amo
    with monkeypatch.context() as patch:
        patch.setattr(sink, "amo", LosesAnswers(real))
        for event in fresh()["queue abandoned with callback"] + fresh()["inbound answered"][2:]:
            await sink.deliver(event)  # every create "times out" after amoCRM took it
    await deliver_all(sink, fresh()["queue abandoned with callback"] + fresh()["inbound answered"][2:])
    assert sorted(c[0] for c in calls(amo)) == [f"{CHAIN}-0", f"{CHAIN}-1"]
    assert len(amo.account.tasks) == 1
    assert len([n for n in amo.account.notes if n.note_type == "common"]) == 1


async def test_when_amo_refuses_for_rate_the_retries_lose_nothing(sink: AmoSink, amo: Amo) -> None:
    amo.faults.pending.append(Failure("*", 429, {}, 4))  # other integrations used the account's budget
    chains = [f"2511251851{n:02d}_{900 + n}" for n in range(4)]
    await asyncio.gather(*(deliver_all(sink, fresh(c)["inbound answered"]) for c in chains))
    assert [c.status for c in amo.journal.received].count(429) == 4
    assert sorted(c[0] for c in calls(amo)) == sorted(f"{c}-1" for c in chains)
    assert len([n for n in amo.account.notes if n.note_type == "common"]) == 4


async def test_oauth_tokens_are_refreshed_rotated_and_kept_in_the_store(legs: LegStore) -> None:
    fake = account(Amo(access_ttl=600))  # shorter than the refresh margin: every use refreshes
    first_refresh = fake.issue_refresh_token()
    runner, fake.url = await serve(fake.app())
    sink = make_sink(
        legs,
        fake.url,
        token="",
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        redirect_uri="https://tcxhooks.example/amo",
        refresh_token=first_refresh,
    )
    try:
        await deliver_all(sink, fresh()["outbound not answered"])
        assert first_refresh not in fake.refresh_tokens
        stored = await legs.value("amo", "oauth")
        assert stored is not None and first_refresh not in stored
        await deliver_all(sink, fresh("251125184600_699")["outbound not answered"])
    finally:
        await sink.close()
        await runner.cleanup()
    assert len(fake.account.calls) == 2


async def test_check_and_ping_change_nothing(sink: AmoSink, amo: Amo, legs: LegStore) -> None:
    amo.bucket.limit = 1000  # three adapters check one account within a second here
    assert (await sink.ping()).verdict == "delivered"
    lines = await sink.check()
    assert [(line.item, line.ok) for line in lines] == [("amo auth", True), ("amo users", True), ("amo notify", True)]
    assert "101 → 501 Anna Petrova" in lines[1].detail
    amo.accepts_call_events = False
    assert "no longer takes" in (await sink.check())[2].detail
    wrong = make_sink(legs, amo.url, AmoOptions(user_map={"103": 999}), token="wrong-token")
    try:
        assert [(line.item, line.ok) for line in await wrong.check()] == [("amo auth", False)]
    finally:
        await wrong.close()
    unknown = make_sink(legs, amo.url, AmoOptions(user_map={"103": 999}))
    try:
        users = (await unknown.check())[1]
    finally:
        await unknown.close()
    assert not users.ok and "103 → 999" in users.detail
    assert amo.account.calls == [] and amo.account.phone_events == [] and amo.account.notes == []


async def test_errors_never_show_the_token(legs: LegStore, amo: Amo) -> None:
    wrong = make_sink(legs, amo.url, token="secret-token-not-amos")
    try:
        reply = await wrong.deliver(ended(0, "101", "Missed", direction="out", did=""))
    finally:
        await wrong.close()
    assert (reply.verdict, reply.status) == ("gone", 401)
    assert "secret-token-not-amos" not in reply.error + reply.summary
