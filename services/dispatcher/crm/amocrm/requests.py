"""The amoCRM requests the mapping makes, built from a leg (docs/crm.md, "amoCRM / Kommo").

Every request is a `Call` whose `method` is "VERB /path" and whose params hold the JSON `body` and
the `query`; amoCRM echoes each item's `request_id`, which is the leg id here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..plan import Call
from .leg import AmoLeg
from .texts import texts

ENTITY_TYPES = ("leads", "contacts", "companies", "customers")  # the API's paths
SINGULAR = {"lead": "leads", "contact": "contacts", "company": "companies", "customer": "customers"}
STATUS_TALKED, STATUS_NOT_REACHED = 4, 6  # call_status: "had a conversation", "no connection" (не дозвонился)
TASK_TYPE_CALL = 1
PAGE = 250  # amoCRM's largest page


@dataclass(frozen=True)
class AmoOptions:
    """The [crm:NAME] keys the mapping reads (docs/crm.md)."""

    user_map: Mapping[str, int] = field(default_factory=dict)  # extension → amo user id
    default_user: int = 0  # for unmapped extensions and queues (0: amoCRM's own default)
    source: str = "3CX"  # the call's `source`, the Unsorted entry's source and service code
    notify: bool = True  # the live "incoming call" notification (POST /api/v2/events)
    unsorted: bool = True  # inbound callers no entity knows go to Unsorted
    pipeline_id: int = 0  # the pipeline of Unsorted entries (0: the main one)
    missed_task: bool = True
    missed_task_delay: float = 900.0  # seconds until the call-back task is due
    transcript: bool = True  # the transcript in the call's note
    summary: bool = True  # the summary in the call's note
    recording_wait: float = 600.0  # how long an answered leg waits for its recording (0: not at all)
    links: bool = True  # recording links go to amoCRM (recording = none: they do not)
    language: str = "ru"  # of the texts written into amoCRM (texts.py)

    def user_of(self, extension: str) -> int:
        return self.user_map.get(extension, self.default_user)


def _call(
    step: str, method: str, body: Any = None, query: Mapping[str, Any] | None = None, realtime: bool = False
) -> Call:
    params: dict[str, Any] = {}
    if body is not None:
        params["body"] = body
    if query:
        params["query"] = dict(query)
    return Call(step, method, params, realtime=realtime)


def _user(settings: AmoOptions, leg: AmoLeg) -> dict[str, int]:
    user = settings.user_of(leg.user)
    return {"responsible_user_id": user, "created_by": user} if user else {}


def notify(phone: str, user: int) -> Call:
    return _call(
        "notify",
        "POST /api/v2/events",
        {"add": [{"type": "phone_call", "phone_number": phone, "users": [user]}]},
        realtime=True,
    )


def log_call(key: str, leg: AmoLeg, settings: AmoOptions) -> Call:
    item: dict[str, Any] = {
        "request_id": key,
        "direction": leg.direction,
        "uniq": key,
        "duration": leg.duration,
        "source": settings.source,
        "phone": leg.phone,
        "call_result": leg.result,
        "call_status": STATUS_NOT_REACHED if leg.missed else STATUS_TALKED,
        "created_at": leg.started_at,
        **_user(settings, leg),
    }
    if leg.link:
        item["link"] = leg.link
    return _call("call", "POST /api/v4/calls", [item])


def unsorted(key: str, leg: AmoLeg, settings: AmoOptions) -> Call:
    metadata: dict[str, Any] = {
        "from": leg.phone,
        "phone": leg.line,
        "called_at": leg.started_at,
        "duration": leg.duration,
        "service_code": settings.source,
        "uniq": key,
        "is_call_event_needed": True,
    }
    if leg.link:
        metadata["link"] = leg.link
    title = texts(settings.language).lead(leg.phone, leg.missed)
    item: dict[str, Any] = {
        "request_id": key,
        "source_name": settings.source,
        "source_uid": key,
        "created_at": leg.started_at,
        "metadata": metadata,
        "_embedded": {
            "leads": [{"name": title}],
            "contacts": [
                {
                    "name": leg.phone,
                    "custom_fields_values": [
                        {"field_code": "PHONE", "values": [{"value": leg.phone, "enum_code": "WORK"}]}
                    ],
                }
            ],
        },
    }
    if settings.pipeline_id:
        item["pipeline_id"] = settings.pipeline_id
    return _call("unsorted", "POST /api/v4/leads/unsorted/sip", [item])


def missed_task(key: str, leg: AmoLeg, settings: AmoOptions, now: float) -> Call:
    item: dict[str, Any] = {
        "request_id": key,
        "task_type_id": TASK_TYPE_CALL,
        "text": texts(settings.language).task(leg.phone, key),
        "complete_till": int(now + settings.missed_task_delay),
        "entity_type": leg.entity_type,
        "entity_id": leg.entity_id,
    }
    user = settings.user_of(leg.user)
    if user:
        item["responsible_user_id"] = user
    return _call("task", "POST /api/v4/tasks", [item])


def note(step: str, key: str, leg: AmoLeg, text: str) -> Call:
    return _call(
        step,
        f"POST /api/v4/{leg.entity_type}/{leg.entity_id}/notes",
        [{"request_id": key, "note_type": "common", "params": {"text": text}}],
    )


# --- look-ups after a create request whose answer was lost (crash, timeout) -------------------------


def find_call(leg: AmoLeg, entity_type: str, page: int) -> Call:
    """Call notes (`call_in`/`call_out`) of one entity type since the call started."""
    return _call(
        "find_call",
        f"GET /api/v4/{entity_type}/notes",
        query={
            "filter[note_type][0]": "call_in",
            "filter[note_type][1]": "call_out",
            "filter[updated_at][from]": max(0, leg.started_at - 3600),
            "limit": PAGE,
            "page": page,
        },
    )


def find_unsorted(page: int) -> Call:
    return _call(
        "find_unsorted", "GET /api/v4/leads/unsorted", query={"filter[category][0]": "sip", "limit": PAGE, "page": page}
    )


def find_task(leg: AmoLeg, page: int) -> Call:
    return _call(
        "find_task",
        "GET /api/v4/tasks",
        query={
            "filter[entity_type]": leg.entity_type,
            "filter[entity_id][0]": leg.entity_id,
            "limit": PAGE,
            "page": page,
        },
    )


def find_note(step: str, leg: AmoLeg, page: int) -> Call:
    return _call(
        f"find_{step}",
        f"GET /api/v4/{leg.entity_type}/{leg.entity_id}/notes",
        query={"filter[note_type]": "common", "limit": PAGE, "page": page},
    )


def items(result: Any, name: str) -> list[dict[str, Any]]:
    """`_embedded.<name>` of an answer (empty for 204 No Content or an odd body)."""
    if not isinstance(result, dict):
        return []
    found = (result.get("_embedded") or {}).get(name)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []
