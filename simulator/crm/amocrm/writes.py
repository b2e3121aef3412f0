"""The fake API's writes: calls, Unsorted entries, the v2 call notification, tasks and notes, each item
checked as amoCRM does before any is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .account import ENTITY_PATHS, PhoneCallEvent, Task
from .rest import entity_path, json_list, json_object, link, problem, validation

if TYPE_CHECKING:
    from .server import FakeAmo

CALL_DIRECTIONS = ("inbound", "outbound")


async def calls(fake: FakeAmo, request: web.Request) -> web.Response:
    items = await json_list(request)
    for n, item in enumerate(items):
        _check_call(str(item.get("request_id", n)), item)
    added, errors = [], []
    for n, item in enumerate(items):
        request_id = str(item.get("request_id", n))
        call = fake.account.attach_call(item)
        if call is None:
            errors.append(
                {
                    "request_id": request_id,
                    "status": 404,
                    "title": "Not Found",
                    "detail": "No entity with this phone number: the call is not added",
                }
            )
            continue
        path = f"/api/v4/{call.entity_type}/{call.entity_id}"
        added.append(
            {
                "id": call.id,
                "entity_id": call.entity_id,
                "entity_type": ENTITY_PATHS[call.entity_type],
                "account_id": fake.account.id,
                "request_id": request_id,
                "_embedded": {"entity": {"id": call.entity_id, "_links": link(request, path)}},
            }
        )
    return web.json_response({"_total_items": len(added), "errors": errors, "_embedded": {"calls": added}})


async def unsorted(fake: FakeAmo, request: web.Request) -> web.Response:
    items = await json_list(request)
    known = {u.source_uid for u in fake.account.unsorted}
    for n, item in enumerate(items):
        request_id = str(item.get("request_id", n))
        _check_unsorted(request_id, item)
        if str(item["source_uid"]) in known:
            raise validation(request_id, "source_uid", "Unsorted with this source_uid already exists", "Duplicate")
    created = []
    for n, item in enumerate(items):
        entry = fake.account.add_unsorted(item, fake.pipeline_id)
        created.append(
            {
                "uid": entry.uid,
                "category": "sip",
                "request_id": str(item.get("request_id", n)),
                "_embedded": {
                    "leads": [{"id": entry.lead_id, "_links": link(request, f"/api/v4/leads/{entry.lead_id}")}],
                    "contacts": [{"id": entry.contact_id}],
                    "companies": [],
                },
            }
        )
    return web.json_response({"_total_items": len(created), "_embedded": {"unsorted": created}})


async def events(fake: FakeAmo, request: web.Request) -> web.Response:
    if not fake.accepts_call_events:
        raise problem(404, "Not Found", "Method is not available")
    body = await json_object(request)
    add = body.get("add")
    if not isinstance(add, list) or not add:
        raise validation("0", "add", "This value should not be blank.", "NotBlank")
    for n, item in enumerate(add):
        users = item.get("users", []) if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type") != "phone_call" or not item.get("phone_number"):
            raise validation(str(n), "type", "Only phone_call events with a phone_number are supported")
        if not isinstance(users, list) or any(u not in fake.account.users for u in users):
            raise validation(str(n), "users", "Unknown user id", "InvalidUser")
    for item in add:
        fake.account.phone_events.append(PhoneCallEvent(str(item["phone_number"]), list(item.get("users", []))))
    return web.json_response({}, status=202)


async def tasks(fake: FakeAmo, request: web.Request) -> web.Response:
    items = await json_list(request)
    for n, item in enumerate(items):
        request_id = str(item.get("request_id", n))
        if not str(item.get("text") or "").strip():
            raise validation(request_id, "text", "This value should not be blank.", "NotBlank")
        if not isinstance(item.get("complete_till"), int):
            raise validation(request_id, "complete_till", "This value should be of type int.", "InvalidType")
        if not fake.account.exists(str(item.get("entity_type")), int(item.get("entity_id") or 0)):
            raise validation(request_id, "entity_id", "Entity not found", "NotFound")
    created = []
    for n, item in enumerate(items):
        task = Task(
            fake.account.next_id(),
            str(item["entity_type"]),
            int(item["entity_id"]),
            str(item["text"]),
            int(item["complete_till"]),
            int(item.get("task_type_id") or 1),
            int(item.get("responsible_user_id") or 0),
        )
        fake.account.tasks.append(task)
        created.append(
            {
                "id": task.id,
                "request_id": str(item.get("request_id", n)),
                "_links": link(request, f"/api/v4/tasks/{task.id}"),
            }
        )
    return web.json_response({"_embedded": {"tasks": created}})


async def notes(fake: FakeAmo, request: web.Request) -> web.Response:
    entity, entity_id = entity_path(request), int(request.match_info["id"])
    if not fake.account.exists(entity, entity_id):
        raise problem(404, "Not Found", f"{entity} {entity_id} not found")
    items = await json_list(request)
    for n, item in enumerate(items):
        if item.get("note_type") != "common" or not str((item.get("params") or {}).get("text") or "").strip():
            raise validation(str(item.get("request_id", n)), "params.text", "A common note needs a text")
    created = []
    for n, item in enumerate(items):
        note = fake.account.add_note(entity, entity_id, "common", dict(item["params"]))
        created.append({"id": note.id, "entity_id": entity_id, "request_id": str(item.get("request_id", n))})
    return web.json_response({"_embedded": {"notes": created}})


def _check_call(request_id: str, item: dict[str, Any]) -> None:
    if item.get("direction") not in CALL_DIRECTIONS:
        raise validation(request_id, "direction", "The value you selected is not a valid choice.")
    if not isinstance(item.get("duration"), int) or item["duration"] < 0:
        raise validation(request_id, "duration", "This value should be of type int.", "InvalidType")
    for key in ("source", "phone"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise validation(request_id, key, "This value should not be blank.", "NotBlank")
    if "call_status" in item and item["call_status"] not in range(1, 8):
        raise validation(request_id, "call_status", "The value you selected is not a valid choice.")


def _check_unsorted(request_id: str, item: dict[str, Any]) -> None:
    for key in ("source_name", "source_uid"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise validation(request_id, key, "This value should not be blank.", "NotBlank")
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        raise validation(request_id, "metadata", "This value should not be blank.", "NotBlank")
    for key in ("uniq", "service_code", "phone", "from"):
        if not metadata.get(key):
            raise validation(request_id, f"metadata.{key}", "This value should not be blank.", "NotBlank")
    for key in ("duration", "called_at"):
        if not isinstance(metadata.get(key), int):
            raise validation(request_id, f"metadata.{key}", "This value should be of type int.", "InvalidType")
