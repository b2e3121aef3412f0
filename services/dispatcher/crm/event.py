"""What a CRM adapter reads from an event: one flat, typed view of any `tcxhooks.v1.Event`.

    view = CrmEvent.of(event)
    view.kind, view.leg, view.link, view.chain, view.user, view.started_at

Adapters never touch the protobuf: a field added to the contract reaches every adapter here. The
times (`started_at`, `answered_at`, `ended_at`) are the contract's `*_time` fields (docs/webhooks.md),
None where the monitor left them unset; `occurred_at` is the event's own `occur_time`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from tcxhooks.v1 import common_pb2, events_pb2

_CALL_KINDS = {
    events_pb2.CALL_EVENT_TYPE_RINGING: "ringing",
    events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED: "ringing_stopped",
    events_pb2.CALL_EVENT_TYPE_ANSWERED: "answered",
    events_pb2.CALL_EVENT_TYPE_ENDED: "ended",
    events_pb2.CALL_EVENT_TYPE_DIALING: "dialing",
}
_STATUS_KINDS = {
    events_pb2.STATUS_EVENT_TYPE_FORWARDING: "forwarding",
    events_pb2.STATUS_EVENT_TYPE_QUEUE_LOGIN: "queue_login",
    events_pb2.STATUS_EVENT_TYPE_QUEUE_STATUS: "queue_status",
    events_pb2.STATUS_EVENT_TYPE_EXTENSION_ADDED: "extension_added",
    events_pb2.STATUS_EVENT_TYPE_EXTENSION_DELETED: "extension_deleted",
    events_pb2.STATUS_EVENT_TYPE_AGENT_ADDED: "agent_added",
    events_pb2.STATUS_EVENT_TYPE_AGENT_REMOVED: "agent_removed",
}
_DIRECTIONS = {
    common_pb2.DIRECTION_INCOMING: "in",
    common_pb2.DIRECTION_OUTGOING: "out",
    common_pb2.DIRECTION_INTERNAL: "internal",
}
_USERTYPES = {common_pb2.USER_TYPE_EXT: "ext", common_pb2.USER_TYPE_QUEUE: "queue", common_pb2.USER_TYPE_OTHER: "other"}
_TRTYPES = {common_pb2.TRANSFER_TYPE_BLIND: "Blind", common_pb2.TRANSFER_TYPE_ACCOMP: "Accomp"}
_FINISH = {common_pb2.FINISH_TYPE_OK: "Ok", common_pb2.FINISH_TYPE_MISSED: "Missed"}
_CALL_ID = re.compile(r"^(?P<chain>\d{12}_\d+)-(?P<link>\d+)$")


@dataclass(frozen=True)
class Segment:
    channel: str  # operator / client / mono
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class CrmEvent:
    """One event as adapters see it. `kind` is one of: ringing, ringing_stopped, answered, ended,
    dialing, recording, analytics, analytics_failed, ping, or a status kind (forwarding, queue_login,
    queue_status, extension_added, extension_deleted, agent_added, agent_removed)."""

    kind: str
    event_id: str
    chain: str
    occurred_at: float  # unix seconds
    call_id: str = ""  # `<yyMMddHHmmss>_<n>-<link>` for call, recording and analytics events
    link: int = -1  # the call id's link; -1 when the event has no call id
    direction: str = ""  # in / out / internal
    caller: str = ""  # the external number (callerid)
    caller_name: str = ""
    did: str = ""
    did_name: str = ""
    user: str = ""
    user_name: str = ""
    usertype: str = ""  # ext / queue / other
    trtype: str = "NotDef"
    finishtype: str = ""  # Ok / Missed
    transfer: bool = False
    title: str = ""
    duration: int = 0
    ring_seconds: int = 0
    callback: bool | None = None  # None: not a queue call
    queue: str = ""
    queue_name: str = ""
    started_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    links: tuple[str, ...] = ()  # recording files, in order
    text: str = ""  # analytics: transcript
    summary: str = ""
    segments: tuple[Segment, ...] = ()
    error: str = ""  # analytics_failed
    extension: str = ""  # status events: the extension concerned
    extra: dict[str, Any] = field(default_factory=dict)  # the status event's other fields

    @property
    def is_call(self) -> bool:
        return self.kind in ("ringing", "ringing_stopped", "answered", "ended", "dialing")

    @property
    def chain_number(self) -> str:
        """The PBX's call number `n` of `<yyMMddHHmmss>_<n>` ("" when the event has no call id)."""
        return self.chain.split("_", 1)[1] if "_" in self.chain and self.call_id else ""

    @classmethod
    def of(cls, event: events_pb2.Event) -> CrmEvent:
        """Raises ValueError for an event no adapter can read (no payload, unknown type)."""
        kind = event.WhichOneof("payload")
        base: dict[str, Any] = {
            "event_id": event.event_id,
            "chain": event.chain,
            "occurred_at": _seconds(event, "occur_time") or 0.0,
        }
        if kind == "call":
            return cls(**base, **_call_fields(event.call))
        if kind == "recording":
            rec = event.recording
            fields = _call_fields(rec.call) if rec.HasField("call") else {}
            fields.update(kind="recording", **_leg(rec.call_id), links=tuple(f.url for f in rec.files))
            return cls(**base, **fields)
        if kind == "analytics":
            a = event.analytics
            segments = tuple(Segment(s.channel, s.start_seconds, s.end_seconds, s.text) for s in a.segments)
            return cls(**base, kind="analytics", **_leg(a.call_id), text=a.text, summary=a.summary, segments=segments)
        if kind == "analytics_failed":
            return cls(
                **base,
                kind="analytics_failed",
                **_leg(event.analytics_failed.call_id),
                error=event.analytics_failed.error,
            )
        if kind == "status":
            s = event.status
            if s.type not in _STATUS_KINDS:
                raise ValueError(f"unknown status event type {s.type}")
            extra = {
                k: v
                for k, v in (
                    ("name", s.name),
                    ("email", s.email),
                    ("status", s.status),
                    ("previous", s.previous),
                    ("queue", s.queue),
                )
                if v
            }
            return cls(
                **base,
                kind=_STATUS_KINDS[s.type],
                extension=s.user,
                queue=s.queue,
                queue_name=s.queue_name,
                extra=extra,
            )
        if kind == "ping":
            return cls(**base, kind="ping")
        raise ValueError("the event has no payload")


def _leg(call_id: str) -> dict[str, Any]:
    match = _CALL_ID.match(call_id)
    return {"call_id": call_id, "link": int(match.group("link")) if match else -1}


def _call_fields(call: events_pb2.CallEvent) -> dict[str, Any]:
    kind = _CALL_KINDS.get(call.type)
    if kind is None:
        raise ValueError(f"unknown call event type {int(call.type)}")
    return {
        "kind": kind,
        **_leg(call.call_id),
        "direction": _DIRECTIONS.get(call.direction, ""),
        "caller": call.caller_id,
        "did": call.did,
        "did_name": call.did_name,
        "user": call.user,
        "usertype": _USERTYPES.get(call.user_type, ""),
        "trtype": _TRTYPES.get(call.transfer_type, "NotDef"),
        "finishtype": _FINISH.get(call.finish_type, ""),
        "transfer": call.transfer,
        "title": call.title,
        "duration": int(call.duration_seconds),
        "ring_seconds": int(call.ring_seconds),
        "callback": call.callback if call.has_callback else None,
        "queue": call.queue,
        "caller_name": call.caller_name,
        "user_name": call.user_name,
        "queue_name": call.queue_name,
        "started_at": _seconds(call, "started_time"),
        "answered_at": _seconds(call, "answered_time"),
        "ended_at": _seconds(call, "ended_time"),
    }


def _seconds(message: Message, name: str) -> float | None:
    """A Timestamp field as unix seconds; None when unset."""
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    return float(stamp.seconds) + float(stamp.nanos) / 1e9
