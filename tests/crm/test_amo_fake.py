"""The fake amoCRM answers as amoCRM's v4 API documents (simulator/crm/amocrm.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tcxhooks.simulator.crm.amocrm import FakeAmo
from tests.crm.portal import serve

TOKEN = "long-lived-token"


URLS: dict[int, str] = {}


@pytest.fixture
async def amo() -> AsyncIterator[FakeAmo]:
    fake = FakeAmo(long_lived_token=TOKEN, limit=1000)
    fake.account.add_user(501, "Anna Petrova")
    fake.account.add_contact("Ivan", "+7 (916) 123-45-67", active_leads=1)
    fake.account.add_contact("Olga", "8 903 000-11-22")
    runner, URLS[id(fake)] = await serve(fake.app())
    yield fake
    await runner.cleanup()


async def send(
    fake: FakeAmo, method: str, path: str, body: Any = None, token: str = TOKEN, params: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=URLS[id(fake)]) as client:
        return await client.request(
            method, path, json=body, params=params, headers={"Authorization": f"Bearer {token}"}
        )


def a_call(phone: str, **extra: Any) -> dict[str, Any]:
    return {
        "direction": "inbound",
        "uniq": "251125184500_698-1",
        "duration": 65,
        "source": "3CX",
        "phone": phone,
        "call_status": 4,
        "request_id": "0",
        **extra,
    }


async def test_a_call_goes_to_the_only_active_lead_of_the_matching_contact(amo: FakeAmo) -> None:
    reply = await send(amo, "POST", "/api/v4/calls", [a_call("79161234567", link="https://x/1.mp3")])
    assert reply.status_code == 200
    added = reply.json()["_embedded"]["calls"]
    lead_id = amo.account.contacts[min(amo.account.contacts)].lead_ids[0]
    assert (added[0]["entity_type"], added[0]["entity_id"], added[0]["request_id"]) == ("lead", lead_id, "0")
    note = amo.account.notes[0]
    assert (note.entity_type, note.note_type, note.params["link"]) == ("leads", "call_in", "https://x/1.mp3")


async def test_a_contact_without_one_active_lead_gets_the_call_itself(amo: FakeAmo) -> None:
    reply = await send(amo, "POST", "/api/v4/calls", [a_call("+79030001122", direction="outbound", call_status=6)])
    assert reply.json()["_embedded"]["calls"][0]["entity_type"] == "contact"
    assert amo.account.notes[0].note_type == "call_out"


async def test_an_unknown_number_is_not_added(amo: FakeAmo) -> None:
    reply = await send(amo, "POST", "/api/v4/calls", [a_call("74950000000")])
    assert reply.status_code == 200
    body = reply.json()
    assert body["_embedded"]["calls"] == [] and body["errors"][0]["request_id"] == "0"
    assert amo.account.calls == []


async def test_validation_errors_name_the_field(amo: FakeAmo) -> None:
    reply = await send(amo, "POST", "/api/v4/calls", [a_call("79161234567", direction="sideways")])
    assert reply.status_code == 400
    error = reply.json()["validation-errors"][0]
    assert (error["request_id"], error["errors"][0]["path"]) == ("0", "direction")
    assert amo.account.calls == []


async def test_auth_is_required_and_problem_json_explains(amo: FakeAmo) -> None:
    reply = await send(amo, "GET", "/api/v4/account", token="wrong")
    assert reply.status_code == 401 and reply.json()["title"] == "Unauthorized"
    assert (await send(amo, "GET", "/api/v4/account")).json()["subdomain"] == "tcxdemo"


async def test_oauth_refresh_rotates_the_refresh_token() -> None:
    fake = FakeAmo(access_ttl=3600)
    refresh = fake.issue_refresh_token()
    runner, URLS[id(fake)] = await serve(fake.app())
    try:
        grant = {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "redirect_uri": "https://example.com",
        }
        async with httpx.AsyncClient(base_url=URLS[id(fake)]) as client:
            first = (await client.post("/oauth2/access_token", json=grant)).json()
            reused = await client.post("/oauth2/access_token", json=grant)
        assert reused.status_code == 400
        assert (await send(fake, "GET", "/api/v4/account", token=first["access_token"])).status_code == 200
        assert first["refresh_token"] != refresh and first["expires_in"] == 3600
    finally:
        await runner.cleanup()


async def test_unsorted_sip_creates_a_lead_once_and_refuses_the_same_entry(amo: FakeAmo) -> None:
    entry = {
        "source_name": "3CX",
        "source_uid": "251125184500_698-0",
        "created_at": 1764085500,
        "metadata": {
            "uniq": "251125184500_698-0",
            "duration": 0,
            "service_code": "tcxhooks",
            "phone": "74951234567",
            "from": "74990001122",
            "called_at": 1764085500,
        },
        "_embedded": {"leads": [{"name": "Missed call"}]},
    }
    first = await send(amo, "POST", "/api/v4/leads/unsorted/sip", [entry])
    lead_id = first.json()["_embedded"]["unsorted"][0]["_embedded"]["leads"][0]["id"]
    assert amo.account.leads[lead_id].status == "unsorted"
    again = await send(amo, "POST", "/api/v4/leads/unsorted/sip", [entry])
    assert again.status_code == 400 and len(amo.account.unsorted) == 1
    listed = await send(amo, "GET", "/api/v4/leads/unsorted", params={"filter[category][]": "sip"})
    assert listed.json()["_embedded"]["unsorted"][0]["metadata"]["uniq"] == "251125184500_698-0"
    # until a manager accepts it, the new contact is not found by its number
    assert (await send(amo, "POST", "/api/v4/calls", [a_call("74990001122")])).json()["_embedded"]["calls"] == []


async def test_phone_call_events_reach_known_users_until_the_account_stops_accepting_them(amo: FakeAmo) -> None:
    body = {"add": [{"type": "phone_call", "phone_number": "79161234567", "users": [501]}]}
    assert (await send(amo, "POST", "/api/v2/events", body)).status_code == 202
    assert (await send(amo, "POST", "/api/v2/events", {"add": [{**body["add"][0], "users": [9]}]})).status_code == 400
    amo.accepts_call_events = False
    assert (await send(amo, "POST", "/api/v2/events", body)).status_code == 404
    assert [(e.phone_number, e.users) for e in amo.account.phone_events] == [("79161234567", [501])]


async def test_tasks_and_notes_need_an_existing_entity_and_lists_answer_204_when_empty(amo: FakeAmo) -> None:
    lead_id = next(iter(amo.account.leads))
    assert (await send(amo, "GET", "/api/v4/tasks", params={"filter[entity_id][]": str(lead_id)})).status_code == 204
    task = {
        "task_type_id": 1,
        "text": "Call back",
        "complete_till": 1764086400,
        "entity_type": "leads",
        "entity_id": lead_id,
        "responsible_user_id": 501,
    }
    assert (await send(amo, "POST", "/api/v4/tasks", [{**task, "entity_id": 1}])).status_code == 400
    assert (await send(amo, "POST", "/api/v4/tasks", [task])).status_code == 200
    listed = await send(
        amo, "GET", "/api/v4/tasks", params={"filter[entity_type]": "leads", "filter[entity_id][]": str(lead_id)}
    )
    assert listed.json()["_embedded"]["tasks"][0]["text"] == "Call back"
    note = [{"note_type": "common", "params": {"text": "Summary"}}]
    assert (await send(amo, "POST", f"/api/v4/leads/{lead_id}/notes", note)).status_code == 200
    assert (await send(amo, "POST", "/api/v4/leads/1/notes", note)).status_code == 404
    notes = await send(amo, "GET", f"/api/v4/leads/{lead_id}/notes", params={"filter[note_type]": "common"})
    assert notes.json()["_embedded"]["notes"][0]["params"]["text"] == "Summary"


async def test_above_seven_requests_a_second_amo_answers_429_without_json() -> None:
    fake = FakeAmo(long_lived_token=TOKEN, clock=lambda: 1000.0)  # every request in the same second
    runner, URLS[id(fake)] = await serve(fake.app())
    try:
        async with httpx.AsyncClient(base_url=URLS[id(fake)], headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            replies = [await client.get("/api/v4/account") for _ in range(9)]
            journal = (await client.get("/fake/calls")).json()
    finally:
        await runner.cleanup()
    assert [r.status_code for r in replies] == [200] * 7 + [429] * 2
    assert replies[-1].headers["content-type"].startswith("text/html")
    assert journal["refused_by_limit"] == 2 and journal["calls"][-1]["status"] == 429


async def test_the_fake_api_adds_contacts_accepts_unsorted_and_loses_answers_on_demand(amo: FakeAmo) -> None:
    async with httpx.AsyncClient(base_url=URLS[id(amo)]) as client:
        await client.post("/fake/contacts", json={"name": "Petr", "phone": "74990001122", "active_leads": 1})
        await client.post("/fake/fail", json={"method": "POST /api/v4/calls", "status": 504, "after": True})
        lost = await send(amo, "POST", "/api/v4/calls", [a_call("74990001122")])
        assert lost.status_code == 504 and len(amo.account.calls) == 1  # added, but the answer is lost
        state = (await client.get("/fake/state")).json()
        assert state["calls"][0]["body"]["phone"] == "74990001122"
        await client.post(
            "/fake/fail", json={"method": "POST /api/v4/calls", "status": 200, "after": True, "delay": 0.05}
        )  # held back, then answered as usual
        held = await send(amo, "POST", "/api/v4/calls", [a_call("74990001122", uniq="251125184500_698-2")])
        assert held.status_code == 200 and held.json()["_embedded"]["calls"][0]["request_id"] == "0"
        journal = (await client.get("/fake/calls")).json()["calls"]
        assert [(c["method"], c["status"]) for c in journal] == [
            ("POST /api/v4/calls", 504),
            ("POST /api/v4/calls", 200),
        ]
        assert journal[0]["params"]["body"][0]["uniq"] == "251125184500_698-1"
