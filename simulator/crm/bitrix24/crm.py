"""The fake portal's non-telephony methods the adapter uses: users, CRM activities and comments,
event handlers and the application's own record."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .state import ENTITY_TYPE_IDS, Page, Portal, RestError, core

Params = dict[str, Any]
_TIMELINE_TYPES = {"lead": "LEAD", "deal": "DEAL", "contact": "CONTACT", "company": "COMPANY"}


def user_get(portal: Portal, p: Params) -> Any:
    raw = p.get("FILTER") if isinstance(p.get("FILTER"), dict) else p.get("filter")
    wanted = raw if isinstance(raw, dict) else {}
    rows = []
    for employee in portal.employees:
        shown = employee.to_json()
        if all(_matches(shown, key, value) for key, value in wanted.items()):
            rows.append(shown)
    sort = str(p.get("sort") or p.get("SORT") or "ID")
    reverse = str(p.get("order") or p.get("ORDER") or "ASC").upper() == "DESC"
    rows.sort(
        key=lambda row: str(row.get(sort, "")).zfill(12) if sort == "ID" else str(row.get(sort, "")), reverse=reverse
    )
    return Page.of(rows, p.get("start"))


def _matches(row: dict[str, Any], key: str, value: Any) -> bool:
    if key == "ACTIVE":
        return bool(row["ACTIVE"]) == (str(value).lower() in ("true", "y", "1"))
    values = value if isinstance(value, list) else [value]
    return str(row.get(key.lstrip("=@"), "")) in {str(v) for v in values}


def todo_add(portal: Portal, p: Params) -> Any:
    for name in ("ownerTypeId", "ownerId", "deadline"):
        if p.get(name) in (None, ""):
            raise RestError(400, "100", f"Required parameter '{name}' is not set")
    type_name = next((name for name, number in ENTITY_TYPE_IDS.items() if str(number) == str(p["ownerTypeId"])), "")
    if portal.entity(type_name, p["ownerId"]) is None:
        raise RestError(400, "NOT_FOUND", "Owner not found")
    try:
        dt.datetime.fromisoformat(str(p["deadline"]))
    except ValueError:
        raise RestError(400, "INVALID_ARG_VALUE", "Invalid value for parameter 'deadline'") from None
    todo_id = portal.next_id()
    portal.activities.append(
        {
            "ID": todo_id,
            "TYPE": "TODO",
            "OWNER_TYPE_ID": int(p["ownerTypeId"]),
            "OWNER_ID": int(p["ownerId"]),
            "DEADLINE": str(p["deadline"]),
            "TITLE": str(p.get("title") or ""),
            "DESCRIPTION": str(p.get("description") or ""),
            "RESPONSIBLE_ID": int(p.get("responsibleId") or 0),
            "PARENT_ID": int(p.get("parentActivityId") or 0),
        }
    )
    return {"id": todo_id}


def comment_add(portal: Portal, p: Params) -> Any:
    raw = p.get("fields")
    fields: dict[str, Any] = raw if isinstance(raw, dict) else {}
    entity_type = _TIMELINE_TYPES.get(str(fields.get("ENTITY_TYPE") or "").lower())
    if not entity_type or not fields.get("ENTITY_ID") or not str(fields.get("COMMENT") or "").strip():
        raise core("ENTITY_TYPE, ENTITY_ID and COMMENT are required")
    if portal.entity(entity_type, fields["ENTITY_ID"]) is None:
        raise core("Entity not found")
    comment_id = portal.next_id()
    portal.comments.append(
        {
            "ID": comment_id,
            "ENTITY_TYPE": entity_type,
            "ENTITY_ID": int(fields["ENTITY_ID"]),
            "COMMENT": str(fields["COMMENT"]),
        }
    )
    return comment_id


def event_bind(portal: Portal, p: Params) -> Any:
    event, handler = (
        str(p.get("event") or p.get("EVENT") or "").upper(),
        str(p.get("handler") or p.get("HANDLER") or ""),
    )
    if not event or not handler:
        raise core("Event and handler are required")
    if not handler.startswith(("http://", "https://")):
        raise core("Wrong handler URL")
    if any(h["event"] == event and h["handler"] == handler for h in portal.handlers):
        raise core("Handler already binded")
    portal.handlers.append({"event": event, "handler": handler, "auth_type": "0", "offline": "0"})
    return True


def event_get(portal: Portal, p: Params) -> Any:
    return list(portal.handlers)


def event_unbind(portal: Portal, p: Params) -> Any:
    event, handler = str(p.get("event") or "").upper(), str(p.get("handler") or "")
    before = len(portal.handlers)
    portal.handlers = [h for h in portal.handlers if not (h["event"] == event and h["handler"] == handler)]
    return {"count": before - len(portal.handlers)}


def app_info(portal: Portal, p: Params) -> Any:
    return {
        "ID": 3,
        "CODE": portal.client_id,
        "VERSION": 1,
        "STATUS": "L",
        "INSTALLED": True,
        "PAYMENT_EXPIRED": "N",
        "DAYS": None,
        "LICENSE": "ru_project",
    }
