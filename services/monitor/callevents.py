"""The call events the graph emits (docs/webhooks.md §3), as protobuf messages for the dispatcher.

Besides the seed's fields, every event carries what is known of the call by then: its start, the leg's answer
and end, the caller's and the user's names, the queue and the ring group or IVR it passed, and the parties of a
transfer. Names come from the PBX's directory (Facts, refreshed now and then), never from a request per event.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import common_pb2, events_pb2

from .chain import Chain
from .facts import Facts

RINGING, STOPPED, ANSWERED, ENDED, DIALING = "ringing", "ringingstopped", "answered", "ended", "dialing"
_TYPES = {
    RINGING: events_pb2.CALL_EVENT_TYPE_RINGING,
    STOPPED: events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED,
    ANSWERED: events_pb2.CALL_EVENT_TYPE_ANSWERED,
    ENDED: events_pb2.CALL_EVENT_TYPE_ENDED,
    DIALING: events_pb2.CALL_EVENT_TYPE_DIALING,
}
DIRECTIONS = {
    "incoming": common_pb2.DIRECTION_INCOMING,
    "outgoing": common_pb2.DIRECTION_OUTGOING,
    "internal": common_pb2.DIRECTION_INTERNAL,
}
_USER_TYPES = {
    "ext": common_pb2.USER_TYPE_EXT,
    "queue": common_pb2.USER_TYPE_QUEUE,
    "other": common_pb2.USER_TYPE_OTHER,
}
_TRTYPES = {
    "NotDef": common_pb2.TRANSFER_TYPE_NOT_DEF,
    "Blind": common_pb2.TRANSFER_TYPE_BLIND,
    "Accomp": common_pb2.TRANSFER_TYPE_ACCOMP,
}


@dataclass
class Emitted:
    """One call event for the dispatcher; `leg` is set on an ended leg with a conversation (recordings due)."""

    chain: str
    event_id: str
    occur: float
    event: events_pb2.CallEvent
    leg: common_pb2.LegRef | None = None
    needs_did: bool = False
    needs_callback: bool = False
    callid: int = 0  # the chain's 3CX call number
    seq: int = 0  # the event's place in its chain (1 = the chain's first event)


@dataclass(frozen=True)
class Fields:
    """What varies between the events of one chain."""

    user: str
    user_type: str = ""
    trtype: str = ""
    reason: common_pb2.RingingStoppedReason = common_pb2.RINGING_STOPPED_REASON_UNSPECIFIED
    finish: common_pb2.FinishType = common_pb2.FINISH_TYPE_UNSPECIFIED
    transfer: bool = False
    duration: int = 0
    ring: int = 0
    leg: common_pb2.LegRef | None = None
    needs_callback: bool = False
    answered: float = 0.0  # when this leg was answered (0: it was not)
    transferred_to: str = ""  # the DN or external number a leg that ended by a transfer went to
    transferred_to_name: str = ""


def stamp(moment: float) -> Timestamp:
    out = Timestamp()
    out.FromNanoseconds(int(moment * 1e9))
    return out


def emitted(chain: Chain, kind: str, link: int, when: float, fields: Fields, facts: Facts | None = None) -> Emitted:
    """The event `kind` of `chain` at `link`, numbered `chain.seq` (the caller counts it)."""
    call_id = chain.call_id(link)
    incoming = chain.direction == "incoming"
    event = events_pb2.CallEvent(
        type=_TYPES[kind],
        call_id=call_id,
        direction=DIRECTIONS[chain.direction],
        caller_id=chain.caller_id,
        did=chain.did if incoming else "",
        user=fields.user,
        queue=chain.queue,
        user_type=_USER_TYPES.get(fields.user_type, common_pb2.USER_TYPE_UNSPECIFIED),
        transfer_type=_TRTYPES.get(fields.trtype, common_pb2.TRANSFER_TYPE_UNSPECIFIED),
        finish_type=fields.finish,
        transfer=fields.transfer,
        duration_seconds=fields.duration,
        ring_seconds=fields.ring,
        reason=fields.reason,
        did_name=chain.did_name if incoming else "",
        has_callback=bool(chain.queue),
    )
    _describe(event, chain, kind, link, when, fields, facts or Facts())
    if kind == ENDED and chain.queue and not fields.needs_callback:
        # Answered, or missed past the queue: ordering a callback ends the caller's call at the queue.
        event.callback_state = common_pb2.CALLBACK_STATE_NOT_ORDERED
    return Emitted(
        chain.name,
        f"{call_id}/{kind}/{fields.user}/{chain.seq}",
        when,
        event,
        fields.leg,
        needs_did=kind == ENDED and incoming and not chain.did,
        needs_callback=fields.needs_callback,
        callid=chain.callid,
        seq=chain.seq,
    )


def _describe(
    event: events_pb2.CallEvent, chain: Chain, kind: str, link: int, when: float, fields: Fields, facts: Facts
) -> None:
    """The times, names and parties of the call so far (docs/webhooks.md §3)."""
    event.started_time.CopyFrom(stamp(chain.first_seen))
    if fields.answered:
        event.answered_time.CopyFrom(stamp(fields.answered))
    if kind == ENDED:
        event.ended_time.CopyFrom(stamp(when))
    # An internal call's caller is an extension: its user's name.
    event.caller_name = facts.name(chain.caller_id) if chain.direction == "internal" else chain.caller_name
    event.user_name = facts.name(fields.user)
    event.queue_name = facts.name(chain.queue)
    event.group, event.group_name = chain.group, facts.name(chain.group)
    event.transferred_to, event.transferred_to_name = fields.transferred_to, fields.transferred_to_name
    source = chain.transfers_from.get(str(link), "")
    event.transferred_from, event.transferred_from_name = source, facts.name(source)
