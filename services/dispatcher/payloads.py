"""Renders a `tcxhooks.v1.Event` into the webhook bodies of docs/webhooks.md §3–§4.

    body = render(event, "form")   # b"event=ringing&callerid=...&id=251125184500_698-0"
    body = render(event, "json")   # b'{"type":"call.ringing","timestamp":"...","data":{...}}'

The form body lists the seed's field names in the order of the spec's tables, then our extras;
it is UTF-8 percent-encoded, so one event always gives the same bytes. `validate()` rejects an
event the contract cannot carry (the servicer answers INVALID_ARGUMENT and stores nothing).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import common_pb2, events_pb2

from .encoding import form_field, form_value, iso_time, utc_timestamp
from .errors import InvalidEvent

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
MAX_ID = 256

_USERTYPE = {common_pb2.USER_TYPE_EXT: "ext", common_pb2.USER_TYPE_QUEUE: "queue", common_pb2.USER_TYPE_OTHER: "other"}
_TRTYPE = {
    common_pb2.TRANSFER_TYPE_UNSPECIFIED: "NotDef",
    common_pb2.TRANSFER_TYPE_NOT_DEF: "NotDef",
    common_pb2.TRANSFER_TYPE_BLIND: "Blind",
    common_pb2.TRANSFER_TYPE_ACCOMP: "Accomp",
}
_FINISH = {common_pb2.FINISH_TYPE_OK: "Ok", common_pb2.FINISH_TYPE_MISSED: "Missed"}
_DIRECTION = {
    common_pb2.DIRECTION_INCOMING: "incoming",
    common_pb2.DIRECTION_OUTGOING: "outgoing",
    common_pb2.DIRECTION_INTERNAL: "internal",
}
_REASON = {
    common_pb2.RINGING_STOPPED_REASON_ANSWERED_ELSEWHERE: "answered_elsewhere",
    common_pb2.RINGING_STOPPED_REASON_MOVED_ON: "moved_on",
}
# callback_state → `callback`: true / false / unknown (JSON null): the PBX gives no way to tell
_CALLBACK: dict[int, bool | None] = {
    common_pb2.CALLBACK_STATE_ORDERED: True,
    common_pb2.CALLBACK_STATE_NOT_ORDERED: False,
    common_pb2.CALLBACK_STATE_UNKNOWN: None,
}
# the contract's extra call fields, in their order: (field name, CallEvent timestamp) and names as they are
_TIMES = (("started_at", "started_time"), ("answered_at", "answered_time"), ("ended_at", "ended_time"))
_NAMES = (
    "caller_name",
    "user_name",
    "queue",
    "queue_name",
    "group",
    "group_name",
    "transferred_to",
    "transferred_to_name",
    "transferred_from",
    "transferred_from_name",
)
_CALL_TYPES = {
    events_pb2.CALL_EVENT_TYPE_RINGING: "call.ringing",
    events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED: "call.ringing_stopped",
    events_pb2.CALL_EVENT_TYPE_ANSWERED: "call.answered",
    events_pb2.CALL_EVENT_TYPE_ENDED: "call.ended",
    events_pb2.CALL_EVENT_TYPE_DIALING: "call.dialing",
}
# status event type → (form name, JSON type, fields in order)
_STATUS = {
    events_pb2.STATUS_EVENT_TYPE_FORWARDING: (
        "forwarding",
        "agent.forwarding_changed",
        ("user", "name", "status", "previous"),
    ),
    events_pb2.STATUS_EVENT_TYPE_QUEUE_LOGIN: (
        "queuelogin",
        "agent.queue_login_changed",
        ("user", "name", "status", "previous"),
    ),
    events_pb2.STATUS_EVENT_TYPE_QUEUE_STATUS: (
        "queuestatus",
        "agent.queue_status_changed",
        ("user", "queue", "status", "previous"),
    ),
    events_pb2.STATUS_EVENT_TYPE_EXTENSION_ADDED: ("extensionadded", "extension.added", ("user", "name", "email")),
    events_pb2.STATUS_EVENT_TYPE_EXTENSION_DELETED: ("extensiondeleted", "extension.deleted", ("user", "name")),
    events_pb2.STATUS_EVENT_TYPE_AGENT_ADDED: ("agentadded", "queue.agent_added", ("user", "queue")),
    events_pb2.STATUS_EVENT_TYPE_AGENT_REMOVED: ("agentremoved", "queue.agent_removed", ("user", "queue")),
}

# Every form name and JSON type an event can have: what `[webhook] events` may list (docs/webhooks.md).
EVENT_NAMES = (
    "ringing",
    "ringingstopped",
    "hangupincoming",
    "hangupoutgoing",
    "incoming",
    "outgoing",
    "dialing",
    *(form for form, _, _ in _STATUS.values()),
    "recording",
    "analytics",
    "analyticsfailed",
    "ping",
    *_CALL_TYPES.values(),
    *(json_type for _, json_type, _ in _STATUS.values()),
    "recording.ready",
    "analytics.ready",
    "analytics.failed",
    "webhook.ping",
)

Fields = list[tuple[str, Any]]
# one encoder for every body: json.dumps with options builds a new one per call
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def event_names(event: events_pb2.Event) -> tuple[str, str]:
    """(form name, JSON type) of a valid event."""
    kind = event.WhichOneof("payload")
    if kind == "call":
        call = event.call
        t = call.type
        if t == events_pb2.CALL_EVENT_TYPE_RINGING:
            return "ringing", _CALL_TYPES[t]
        if t == events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED:
            return "ringingstopped", _CALL_TYPES[t]
        if t == events_pb2.CALL_EVENT_TYPE_DIALING:
            return "dialing", _CALL_TYPES[t]
        outgoing = call.direction != common_pb2.DIRECTION_INCOMING
        if t == events_pb2.CALL_EVENT_TYPE_ANSWERED:
            return ("hangupoutgoing" if outgoing else "hangupincoming"), _CALL_TYPES[t]
        return ("outgoing" if outgoing else "incoming"), _CALL_TYPES[t]
    if kind == "status":
        form, json_type, _ = _STATUS[event.status.type]
        return form, json_type
    return {
        "recording": ("recording", "recording.ready"),
        "analytics": ("analytics", "analytics.ready"),
        "analytics_failed": ("analyticsfailed", "analytics.failed"),
        "ping": ("ping", "webhook.ping"),
    }[str(kind)]


def call_id_of(event: events_pb2.Event) -> str:
    kind = event.WhichOneof("payload")
    if kind in ("call", "recording", "analytics", "analytics_failed"):
        return str(getattr(event, str(kind)).call_id)
    return ""


def _need(condition: bool, message: str) -> None:
    """A message that names a value is formatted only when the check fails (`if ...: raise`): every
    event of every Publish passes through here."""
    if not condition:
        raise InvalidEvent(message)


LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a webhook's timestamp can show


def _in_range(stamp: Timestamp) -> bool:
    return 0 <= stamp.seconds <= LAST_SECOND and 0 <= stamp.nanos < 1_000_000_000


def _times_in_range(call: events_pb2.CallEvent, where: str) -> None:
    for _, name in _TIMES:
        if call.HasField(name) and not _in_range(getattr(call, name)):
            raise InvalidEvent(f"{where}.{name} must be a time from 1970 to 9999")


def validate(event: events_pb2.Event) -> None:
    """Raises InvalidEvent when the event cannot be stored and rendered."""
    _need(bool(event.event_id), "event.event_id is empty")
    if len(event.event_id) > MAX_ID:
        raise InvalidEvent(f"event.event_id is longer than {MAX_ID} characters")
    _need(bool(event.chain), "event.chain is empty")
    if len(event.chain) > MAX_ID:
        raise InvalidEvent(f"event.chain is longer than {MAX_ID} characters")
    _need("\x00" not in event.event_id + event.chain + call_id_of(event), "ids must not contain NUL characters")
    _need(_in_range(event.occur_time), "event.occur_time must be a time from 1970 to 9999")
    kind = event.WhichOneof("payload")
    _need(kind is not None, "event has no payload (call, status, recording, analytics, analytics_failed or ping)")
    if kind == "call":
        call = event.call
        if call.type not in _CALL_TYPES:
            raise InvalidEvent(f"call.type {call.type} is not a known CallEventType")
        _times_in_range(call, "call")
        _need(bool(call.call_id), "call.call_id is empty")
        if call.type in (events_pb2.CALL_EVENT_TYPE_RINGING, events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED):
            _need(call.user_type in _USERTYPE, "call.user_type must be EXT, QUEUE or OTHER")
        if call.type == events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED:
            _need(call.reason in _REASON, "call.reason must be ANSWERED_ELSEWHERE or MOVED_ON")
        if call.type in (
            events_pb2.CALL_EVENT_TYPE_ANSWERED,
            events_pb2.CALL_EVENT_TYPE_ENDED,
            events_pb2.CALL_EVENT_TYPE_DIALING,
        ):
            _need(call.direction in _DIRECTION, "call.direction must be INCOMING, OUTGOING or INTERNAL")
            if call.transfer_type not in _TRTYPE:
                raise InvalidEvent(f"call.transfer_type {call.transfer_type} is not known")
        if call.type == events_pb2.CALL_EVENT_TYPE_ENDED:
            _need(call.finish_type in _FINISH, "call.finish_type must be OK or MISSED")
            _need(call.duration_seconds >= 0 and call.ring_seconds >= 0, "call durations must not be negative")
    elif kind == "status":
        if event.status.type not in _STATUS:
            raise InvalidEvent(f"status.type {event.status.type} is not a known StatusEventType")
        _need(bool(event.status.user), "status.user is empty")
    elif kind == "recording":
        rec = event.recording
        _need(bool(rec.call_id), "recording.call_id is empty")
        _need(len(rec.files) > 0, "recording has no files")
        _need(all(f.url for f in rec.files), "recording file without url")
        if rec.HasField("call"):
            _need(rec.call.finish_type in _FINISH, "recording.call.finish_type must be OK or MISSED")
            _times_in_range(rec.call, "recording.call")
    elif kind == "analytics":
        _need(bool(event.analytics.call_id), "analytics.call_id is empty")
    elif kind == "analytics_failed":
        _need(bool(event.analytics_failed.call_id), "analytics_failed.call_id is empty")
    elif kind == "ping":
        _need(bool(event.ping.id), "ping.id is empty")


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _ended_fields(call: events_pb2.CallEvent, with_id: bool) -> Fields:
    fields: Fields = [
        ("callerid", call.caller_id),
        ("user", call.user),
        ("did", call.did),
        ("finishtype", _FINISH[call.finish_type]),
        ("transfer", call.transfer),
        ("title", call.title),
    ]
    if with_id:
        fields.append(("id", call.call_id))
    fields += [("duration", call.duration_seconds), ("ringtime", call.ring_seconds), ("didname", call.did_name)]
    if call.callback_state in _CALLBACK:
        fields.append(("callback", _CALLBACK[call.callback_state]))
    elif call.has_callback:
        fields.append(("callback", call.callback))
    return fields


def _call_extras(call: events_pb2.CallEvent, zone: dt.tzinfo | None, event_time: Timestamp | None = None) -> Fields:
    """The contract's fields after the seed's (docs/webhooks.md §3): times, then names; only those with a value."""
    fields: Fields = [("event_at", iso_time(event_time, zone))] if event_time is not None else []
    fields += [(name, iso_time(getattr(call, field), zone)) for name, field in _TIMES if call.HasField(field)]
    return fields + [(name, value) for name in _NAMES if (value := getattr(call, name))]


def _call_fields(call: events_pb2.CallEvent) -> tuple[Fields, Fields]:
    """(fields of both formats in order, JSON-only extras)."""
    t = call.type
    if t in (events_pb2.CALL_EVENT_TYPE_RINGING, events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED):
        fields: Fields = [
            ("callerid", call.caller_id),
            ("did", call.did),
            ("user", call.user),
            ("usertype", _USERTYPE[call.user_type]),
            ("id", call.call_id),
        ]
        if t == events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED:
            fields.append(("reason", _REASON[call.reason]))
        return fields, []
    if t == events_pb2.CALL_EVENT_TYPE_DIALING:
        return (
            [("callerid", call.caller_id), ("user", call.user), ("did", call.did), ("id", call.call_id)],
            [("direction", _DIRECTION[call.direction])],
        )
    if t == events_pb2.CALL_EVENT_TYPE_ANSWERED:
        return (
            [
                ("callerid", call.caller_id),
                ("user", call.user),
                ("did", call.did),
                ("trtype", _TRTYPE[call.transfer_type]),
                ("id", call.call_id),
            ],
            [("direction", _DIRECTION[call.direction])],
        )
    return _ended_fields(call, with_id=True), [("direction", _DIRECTION[call.direction])]


def _fields(event: events_pb2.Event, zone: dt.tzinfo | None) -> tuple[Fields, Fields, Fields, Fields]:
    """(shared fields, form-only fields, JSON-only fields, the contract's extras for both), each in order."""
    kind = event.WhichOneof("payload")
    if kind == "call":
        call_shared, call_json = _call_fields(event.call)
        event_time = event.occur_time if event.HasField("occur_time") else None
        return call_shared, [], call_json, _call_extras(event.call, zone, event_time)
    if kind == "status":
        status = event.status
        _, _, names = _STATUS[status.type]
        shared = [(name, getattr(status, name)) for name in names if name != "email" or status.email]
        extra: Fields = [("queuename", status.queue_name)] if "queue" in names else []
        return shared, [], extra, []
    if kind == "recording":
        rec = event.recording
        form_only: Fields = [("links[]", f.url) for f in rec.files] + [
            ("durations[]", _seconds(f.duration_seconds)) for f in rec.files
        ]
        json_only = [
            ("links", [f.url for f in rec.files]),
            ("files", [{"url": f.url, "duration": f.duration_seconds, "size": f.size_bytes} for f in rec.files]),
        ]
        ended, extras = (
            (_ended_fields(rec.call, with_id=False), _call_extras(rec.call, zone)) if rec.HasField("call") else ([], [])
        )
        # form: id, links[], durations[], call fields; JSON: id, links, files, call fields
        return [("id", rec.call_id)], form_only + ended, json_only + ended, extras
    if kind == "analytics":
        a = event.analytics
        segments = [
            {"channel": s.channel, "start": s.start_seconds, "end": s.end_seconds, "text": s.text} for s in a.segments
        ]
        return (
            [("id", a.call_id), ("text", a.text), ("summary", a.summary)],
            [],
            [("segments", segments), ("language", a.language), ("backend", a.backend)],
            [],
        )
    if kind == "analytics_failed":
        return [("id", event.analytics_failed.call_id), ("error", event.analytics_failed.error)], [], [], []
    return [("id", event.ping.id), ("time", event.ping.time)], [], [], []


def render(event: events_pb2.Event, fmt: str, zone: dt.tzinfo | None = None) -> bytes:
    """The body of a validated event in `fmt` ("form" or "json"); its times in `zone` (None: the host's)."""
    form_name, json_type = event_names(event)
    shared, form_only, json_only, extras = _fields(event, zone)
    if fmt == "form":
        parts = [form_field("event", form_name)]
        for key, value in (*shared, *form_only, *extras):
            parts.append(form_field(key, value if type(value) is str else form_value(value)))
        return "&".join(parts).encode("ascii")
    body = {"type": json_type, "timestamp": utc_timestamp(event.occur_time), "data": dict(shared + json_only + extras)}
    return _JSON.encode(body).encode("utf-8")


def attributes(event: events_pb2.Event) -> dict[str, str]:
    """What endpoint filters look at: `did`, `queue`, `user` where the event carries them."""
    kind = event.WhichOneof("payload")
    found: dict[str, str] = {}
    if kind == "call":
        call = event.call
        found = {
            "did": call.did,
            "queue": call.queue or (call.user if call.user_type == common_pb2.USER_TYPE_QUEUE else ""),
            "user": call.user,
        }
    elif kind == "recording" and event.recording.HasField("call"):
        call = event.recording.call
        found = {"did": call.did, "queue": call.queue, "user": call.user}
    elif kind == "status":
        found = {"user": event.status.user, "queue": event.status.queue}
    return {k: v for k, v in found.items() if v}
