"""The fake account's `/fake/` API (not amoCRM's): what it received, what it holds, and a manager's
own actions a test or the demo triggers.

    GET  /fake/calls                         every API call received, in order
    GET  /fake/state                         users, contacts, leads, calls, notes, tasks, unsorted, notifications
    POST /fake/contacts {"name", "phone", "active_leads": 1}
    POST /fake/accept   {"uid": …}           a manager accepts an Unsorted entry
    POST /fake/expire                        every access token expires now
    POST /fake/limits   {"limit": 7, "drain": 7}
    POST /fake/fail     {"method": "POST /api/v4/calls", "status": 500, "count": 1, "after": false}
                        (after: do the work, then answer the failure)
    POST /fake/settings {"accepts_call_events": false}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from aiohttp import web

from ..common import add_fake_routes, json_body

if TYPE_CHECKING:
    from .server import FakeAmo


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def add_control_routes(app: web.Application, fake: FakeAmo) -> None:
    account = fake.account

    async def state(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "users": [asdict(u) for u in account.users.values()],
                "contacts": [asdict(c) for c in account.contacts.values()],
                "leads": [asdict(lead) for lead in account.leads.values()],
                "calls": [asdict(c) for c in account.calls],
                "notes": [asdict(n) for n in account.notes],
                "tasks": [asdict(t) for t in account.tasks],
                "unsorted": [asdict(u) for u in account.unsorted],
                "phone_events": [asdict(e) for e in account.phone_events],
            }
        )

    async def contacts(request: web.Request) -> web.Response:
        body = await json_body(request)
        name, phone, leads = body.get("name"), body.get("phone"), body.get("active_leads", 0)
        if not isinstance(name, str) or not isinstance(phone, str) or not isinstance(leads, int) or leads < 0:
            return _bad("give 'name', 'phone' and optionally 'active_leads' (a whole number)")
        return web.json_response(asdict(account.add_contact(name, phone, leads)))

    async def accept(request: web.Request) -> web.Response:
        uid = (await json_body(request)).get("uid")
        entry = next((u for u in account.unsorted if u.uid == uid), None)
        if entry is None:
            return _bad("no Unsorted entry with that 'uid'")
        account.accept(entry)
        return web.json_response({"lead_id": entry.lead_id, "contact_id": entry.contact_id})

    async def expire(request: web.Request) -> web.Response:
        return web.json_response({"expired": fake.expire_tokens()})

    async def settings(request: web.Request) -> web.Response:
        body = await json_body(request)
        if isinstance(body.get("accepts_call_events"), bool):
            fake.accepts_call_events = body["accepts_call_events"]
        return web.json_response({"accepts_call_events": fake.accepts_call_events})

    add_fake_routes(app, fake)
    app.router.add_get("/fake/state", state)
    app.router.add_post("/fake/contacts", contacts)
    app.router.add_post("/fake/accept", accept)
    app.router.add_post("/fake/expire", expire)
    app.router.add_post("/fake/settings", settings)
