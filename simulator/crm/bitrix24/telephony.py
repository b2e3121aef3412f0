"""The fake portal's telephony methods (apidocs.bitrix24.com, api-reference/telephony): external lines,
register / show / hide / finish, records, transcripts, CRM search and call statistics."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from .state import ENTITY_TYPE_IDS, REGISTER_REUSE_SECONDS, Page, Portal, Registration, RestError, core

Params = dict[str, Any]
Download = Callable[[str], Awaitable[tuple[int, bytes]]]  # url → (HTTP status, body)
STATUS_CODES = {"200", "304", "603", "603-S", "403", "404", "486", "484", "503", "480", "402", "423", "OTHER"}


def _flag(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    return 1 if str(value).lower() in ("1", "y", "true") else 0


def line_add(portal: Portal, p: Params) -> Any:
    number = str(p.get("NUMBER") or "").strip()
    if not number:
        raise core("NUMBER should not be empty")
    if number in portal.lines:
        raise core("Line already exists")
    portal.lines[number] = {
        "NUMBER": number,
        "NAME": str(p.get("NAME") or number),
        "CRM_AUTO_CREATE": "N" if str(p.get("CRM_AUTO_CREATE", "Y")).upper() == "N" else "Y",
    }
    return {"ID": len(portal.lines)}


def line_get(portal: Portal, p: Params) -> Any:
    return list(portal.lines.values())


def register(portal: Portal, p: Params) -> Any:
    employee = portal.employee(p.get("USER_ID"), p.get("USER_PHONE_INNER"))
    try:
        kind = int(p.get("TYPE", 0))
    except (TypeError, ValueError):
        kind = 0
    if kind not in (1, 2, 3, 4, 5):
        raise core("Unknown TYPE")
    phone = str(p.get("PHONE_NUMBER") or "")
    digits = phone.lstrip("+")
    if not digits or not digits.isdigit():
        raise core("Unsupported phone number format")
    start = str(p.get("CALL_START_DATE") or "")
    if start:
        try:
            parsed = dt.datetime.fromisoformat(start)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise core("CALL_START_DATE should be in the ISO-8601 format")
    line, external = str(p.get("LINE_NUMBER") or ""), str(p.get("EXTERNAL_CALL_ID") or "")
    now = time.time()
    for earlier in portal.registrations.values():  # the documented re-registration rule
        if (
            now - earlier.registered_at < REGISTER_REUSE_SECONDS
            and earlier.phone == phone
            and earlier.type == kind
            and earlier.user_id == employee.id
            and earlier.line == line
            and earlier.external_id == external
        ):
            return _registered(earlier)
    entity = None
    if p.get("CRM_ENTITY_TYPE") and p.get("CRM_ENTITY_ID"):
        entity = portal.entity(str(p["CRM_ENTITY_TYPE"]), p["CRM_ENTITY_ID"])
    entity = entity or portal.entity_by_phone(phone)
    created: list[dict[str, Any]] = []
    if entity is None and _flag(p.get("CRM_CREATE"), 0):
        entity = portal.new_lead(phone, employee.id)
        created.append({"ENTITY_TYPE": "LEAD", "ENTITY_ID": entity.id})
    call_id = f"externalCall.{portal.member_id[:16]}{portal.next_id()}.{int(now)}"
    registration = Registration(
        call_id,
        employee.id,
        phone,
        kind,
        line,
        external,
        start or dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        now,
        entity,
        created,
    )
    if _flag(p.get("SHOW"), 1):
        registration.shown.add(employee.id)
    portal.registrations[call_id] = registration
    return _registered(registration)


def _registered(r: Registration) -> dict[str, Any]:
    return {
        "CALL_ID": r.call_id,
        "CRM_CREATED_LEAD": next((c["ENTITY_ID"] for c in r.created if c["ENTITY_TYPE"] == "LEAD"), None),
        "CRM_CREATED_ENTITIES": r.created,
        "CRM_ENTITY_TYPE": r.entity.type if r.entity else "",
        "CRM_ENTITY_ID": r.entity.id if r.entity else 0,
    }


def _users(value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if str(v).isdigit()]


def _card(portal: Portal, p: Params, shown: bool) -> bool:
    """show / hide: `true`, or `false` for a call not found (not registered, or finished)."""
    registration = portal.registration(p.get("CALL_ID"))
    if registration is None or registration.finished:
        return False
    users = _users(p.get("USER_ID", registration.user_id))
    if shown:
        registration.shown.update(users)
    else:
        registration.shown.difference_update(users)
    return True


def show(portal: Portal, p: Params) -> Any:
    return _card(portal, p, True)


def hide(portal: Portal, p: Params) -> Any:
    return _card(portal, p, False)


def finish(portal: Portal, p: Params) -> Any:
    if not isinstance(p.get("CALL_ID"), str):
        raise RestError(400, "INVALID_ARGUMENT", "CALL_ID must be a string")
    employee = portal.employee(p.get("USER_ID"), p.get("USER_PHONE_INNER"))
    registration = portal.registration(p.get("CALL_ID"))
    if registration is None or registration.finished:
        raise core("Call is not found (call should be registered prior to finishing)")
    try:
        duration = int(p.get("DURATION") or 0)
    except (TypeError, ValueError):
        duration = 0
    status = str(p.get("STATUS_CODE") or ("200" if duration > 0 else "304"))
    if status not in STATUS_CODES:
        status = "OTHER"
    entity = registration.entity
    if entity is not None and registration.created:
        entity.assigned_by = employee.id  # responsible only of entities this call created
    activity = 0
    if entity is not None:
        activity = portal.next_id()
        portal.activities.append(
            {
                "ID": activity,
                "TYPE": "CALL",
                "OWNER_TYPE_ID": ENTITY_TYPE_IDS[entity.type],
                "OWNER_ID": entity.id,
                "RESPONSIBLE_ID": employee.id,
                "CALL_ID": registration.call_id,
                "DIRECTION": "out" if registration.type == 1 else "in",
            }
        )
    row = {
        "ID": len(portal.statistics) + 1,
        "CALL_ID": registration.call_id,
        "EXTERNAL_CALL_ID": registration.external_id or None,
        "PORTAL_USER_ID": employee.id,
        "PHONE_NUMBER": registration.phone,
        "PORTAL_NUMBER": registration.line,
        "INCOMING": str(registration.type),
        "CALL_DURATION": duration,
        "CALL_START_DATE": registration.start,
        "CALL_STATUS": 1 if status == "200" else 0,
        "CALL_VOTE": int(p.get("VOTE") or 0),
        "COST": float(p.get("COST") or 0),
        "COST_CURRENCY": str(p.get("COST_CURRENCY") or ""),
        "CALL_FAILED_CODE": status,
        "CALL_FAILED_REASON": str(p.get("FAILED_REASON") or ""),
        "CRM_ACTIVITY_ID": activity,
        "CRM_ENTITY_TYPE": entity.type if entity else "",
        "CRM_ENTITY_ID": entity.id if entity else 0,
        "RECORD_FILE_ID": None,
        "TRANSCRIPT_ID": None,
        "COMMENT": None,
    }
    portal.statistics.append(row)
    registration.finished = len(portal.statistics)
    registration.shown.clear()
    return {k: v for k, v in row.items() if k not in ("RECORD_FILE_ID", "TRANSCRIPT_ID")}


def _private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    parsed = [ipaddress.ip_address(str(a).split("%")[0]) for a in addresses]
    return any(a.is_private or a.is_loopback for a in parsed)


async def attach_record(portal: Portal, p: Params, download: Download, upload_url: Callable[[str], str]) -> Any:
    url, name = str(p.get("RECORD_URL") or ""), str(p.get("FILENAME") or "")
    if not url and not name:
        raise RestError(
            400, "", "Required parameters are not set. Request should contain either URL or FILENAME parameter"
        )
    row = portal.statistic(str(p.get("CALL_ID") or ""))
    if row is None:
        raise RestError(400, "", "Call is not found in the statistic table. It looks like it is not finished yet.")
    name = name or urlsplit(url).path.rsplit("/", 1)[-1]
    if not name:
        raise core("File name is empty")
    if not name.lower().endswith((".mp3", ".wav")):
        raise core("Wrong file extension. Only wav and mp3 are allowed")
    if url:
        if portal.public_links_only and _private(url):
            raise RestError(400, "", "Record URL resolves to a non-public address and was blocked.")
        status, content = await download(url)
        if status != 200:
            raise core(f"Server returns HTTP error code {status}")
    elif "FILE_CONTENT" in p:
        if not p["FILE_CONTENT"]:
            raise core("File content is empty.")
        try:
            content = base64.b64decode(str(p["FILE_CONTENT"]), validate=True)
        except (binascii.Error, ValueError):
            raise core("File content is not properly encoded. Base64 encoding is expected.") from None
    else:
        return {"uploadUrl": upload_url(row["CALL_ID"]), "fieldName": "file"}
    return {"FILE_ID": store_record(portal, row, name, content, url)}


def store_record(portal: Portal, row: dict[str, Any], name: str, content: bytes, url: str = "") -> int:
    """Attaches a file to a finished call, replacing the one attached before."""
    file_id = portal.next_id()
    portal.files[file_id] = {
        "ID": file_id,
        "NAME": name,
        "SIZE": len(content),
        "CALL_ID": row["CALL_ID"],
        "SOURCE": url or "upload",
        "MP3": content[:3] == b"ID3" or content[:2] == b"\xff\xfb",
    }
    if row["RECORD_FILE_ID"] is not None:
        portal.files.pop(int(row["RECORD_FILE_ID"]), None)
    row["RECORD_FILE_ID"] = file_id
    return file_id


def attach_transcription(portal: Portal, p: Params) -> Any:
    if not p.get("CALL_ID"):
        raise core("CALL_ID should be set")
    messages = p.get("MESSAGES")
    if not isinstance(messages, list):
        raise core("MESSAGES should be an array")
    for n, message in enumerate(messages):
        message = message if isinstance(message, dict) else {}
        if message.get("SIDE") not in ("User", "Client"):
            raise core(f"MESSAGES[{n}][SIDE] should be either Client or User")
        if not isinstance(message.get("START_TIME"), int) or message["START_TIME"] < 0:
            raise core(f"MESSAGES[{n}][START_TIME] should be greater or equal to zero")
        if not isinstance(message.get("STOP_TIME"), int) or message["STOP_TIME"] < 1:
            raise core(f"MESSAGES[{n}][STOP_TIME] should be greater than zero")
        if not str(message.get("MESSAGE") or "").strip():
            raise core(f"MESSAGES[{n}][MESSAGE] is empty")
    row = portal.statistic(str(p["CALL_ID"]))
    if row is None:
        raise core(f"Call {p['CALL_ID']} is not found. Is it finished?")
    transcript_id = len(portal.transcripts) + 1
    portal.transcripts.append({"ID": transcript_id, "CALL_ID": row["CALL_ID"], "MESSAGES": messages})
    row["TRANSCRIPT_ID"] = transcript_id
    return {"TRANSCRIPT_ID": transcript_id}


def search_crm_entities(portal: Portal, p: Params) -> Any:
    entity = portal.entity_by_phone(str(p.get("PHONE_NUMBER") or ""))
    if entity is None:
        return []
    assigned = next((e for e in portal.employees if e.id == entity.assigned_by), None)
    return [
        {
            "CRM_ENTITY_TYPE": entity.type,
            "CRM_ENTITY_ID": entity.id,
            "ASSIGNED_BY_ID": entity.assigned_by,
            "NAME": entity.name,
            "ASSIGNED_BY": {
                "ID": str(entity.assigned_by),
                "TIMEMAN_STATUS": "OPENED",
                "USER_PHONE_INNER": assigned.phone_inner if assigned else "",
            },
        }
    ]


def statistic_get(portal: Portal, p: Params) -> Any:
    raw = p.get("FILTER")
    wanted: dict[str, Any] = raw if isinstance(raw, dict) else {}
    rows = [
        row
        for row in portal.statistics
        if all(str(row.get(key.lstrip("="))) == str(value) for key, value in wanted.items())
    ]
    return Page.of(rows, p.get("start"))
