"""The fake API's reads: the account, its users and contacts, Unsorted entries, tasks and notes, as amoCRM
lists them (paged; 204 when a page is empty).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .account import Task
from .rest import entity_path, filter_values, link, listing

if TYPE_CHECKING:
    from .server import FakeAmo


async def account(fake: FakeAmo, request: web.Request) -> web.Response:
    account = fake.account
    return web.json_response(
        {
            "id": account.id,
            "name": "tcxhooks demo",
            "subdomain": account.subdomain,
            "current_user_id": min(account.users, default=0),
            "country": "RU",
            "currency": "RUB",
            "_links": link(request, "/api/v4/account"),
        }
    )


async def users(fake: FakeAmo, request: web.Request) -> web.StreamResponse:
    users = [{"id": u.id, "name": u.name, "email": u.email, "lang": "ru"} for u in fake.account.users.values()]
    return listing("users", users, request)


async def contacts(fake: FakeAmo, request: web.Request) -> web.StreamResponse:
    query = request.query.get("query", "")
    found = fake.account.find_contacts(query) if query else [c for c in fake.account.contacts.values() if c.accepted]
    items = [{"id": c.id, "name": c.name, "_embedded": {"leads": [{"id": i} for i in c.lead_ids]}} for c in found]
    return listing("contacts", items, request)


async def unsorted(fake: FakeAmo, request: web.Request) -> web.StreamResponse:
    categories = filter_values(request, "category")
    items = [
        {
            "uid": u.uid,
            "source_uid": u.source_uid,
            "source_name": u.source_name,
            "category": "sip",
            "pipeline_id": u.pipeline_id,
            "created_at": u.created_at,
            "metadata": u.metadata,
            "account_id": fake.account.id,
            "_embedded": {"leads": [{"id": u.lead_id}], "contacts": [{"id": u.contact_id}], "companies": []},
        }
        for u in fake.account.unsorted
        if not categories or "sip" in categories
    ]
    return listing("unsorted", items, request)


async def tasks(fake: FakeAmo, request: web.Request) -> web.StreamResponse:
    types, ids = filter_values(request, "entity_type"), filter_values(request, "entity_id")
    items = [
        _task_json(t)
        for t in fake.account.tasks
        if (not types or t.entity_type in types) and (not ids or str(t.entity_id) in ids)
    ]
    return listing("tasks", items, request)


async def notes(fake: FakeAmo, request: web.Request) -> web.StreamResponse:
    entity = entity_path(request)
    entity_id = int(request.match_info["id"]) if "id" in request.match_info else None
    note_types = filter_values(request, "note_type")
    since = int(request.query.get("filter[updated_at][from]", "0") or 0)
    items = [
        {
            "id": n.id,
            "entity_id": n.entity_id,
            "note_type": n.note_type,
            "params": n.params,
            "created_at": n.created_at,
            "updated_at": n.created_at,
            "created_by": n.created_by,
        }
        for n in fake.account.notes
        if n.entity_type == entity
        and (entity_id is None or n.entity_id == entity_id)
        and (not note_types or n.note_type in note_types)
        and n.created_at >= since
    ]
    return listing("notes", items, request)


def _task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "entity_type": task.entity_type,
        "entity_id": task.entity_id,
        "text": task.text,
        "complete_till": task.complete_till,
        "task_type_id": task.task_type_id,
        "responsible_user_id": task.responsible_user_id,
        "is_completed": False,
    }
