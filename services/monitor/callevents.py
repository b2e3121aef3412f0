"""The call events the graph emits (docs/webhooks.md §3), as protobuf messages for the dispatcher."""
from __future__ import annotations

from dataclasses import dataclass

from tcxhooks.v1 import common_pb2, events_pb2

from .chain import Chain

RINGING, STOPPED, ANSWERED, ENDED = "ringing", "ringingstopped", "answered", "ended"
_TYPES = {RINGING: events_pb2.CALL_EVENT_TYPE_RINGING, STOPPED: events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED,
          ANSWERED: events_pb2.CALL_EVENT_TYPE_ANSWERED, ENDED: events_pb2.CALL_EVENT_TYPE_ENDED}
DIRECTIONS = {"incoming": common_pb2.DIRECTION_INCOMING, "outgoing": common_pb2.DIRECTION_OUTGOING,
              "internal": common_pb2.DIRECTION_INTERNAL}
_USER_TYPES = {"ext": common_pb2.USER_TYPE_EXT, "queue": common_pb2.USER_TYPE_QUEUE, "other": common_pb2.USER_TYPE_OTHER}
_TRTYPES = {"NotDef": common_pb2.TRANSFER_TYPE_NOT_DEF, "Blind": common_pb2.TRANSFER_TYPE_BLIND,
            "Accomp": common_pb2.TRANSFER_TYPE_ACCOMP}


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


def emitted(chain: Chain, kind: str, link: int, when: float, fields: Fields) -> Emitted:
    """The event `kind` of `chain` at `link`, numbered `chain.seq` (the caller counts it)."""
    call_id = chain.call_id(link)
    incoming = chain.direction == "incoming"
    event = events_pb2.CallEvent(
        type=_TYPES[kind], call_id=call_id, direction=DIRECTIONS[chain.direction], caller_id=chain.caller_id,
        did=chain.did if incoming else "", user=fields.user, queue=chain.queue,
        user_type=_USER_TYPES.get(fields.user_type, common_pb2.USER_TYPE_UNSPECIFIED),
        transfer_type=_TRTYPES.get(fields.trtype, common_pb2.TRANSFER_TYPE_UNSPECIFIED),
        finish_type=fields.finish, transfer=fields.transfer, duration_seconds=fields.duration,
        ring_seconds=fields.ring, reason=fields.reason, did_name=chain.did_name if incoming else "",
        has_callback=bool(chain.queue))
    if kind == ENDED and chain.queue and not fields.needs_callback:
        # Answered, or missed past the queue: ordering a callback ends the caller's call at the queue.
        event.callback_state = common_pb2.CALLBACK_STATE_NOT_ORDERED
    return Emitted(chain.name, f"{call_id}/{kind}/{fields.user}/{chain.seq}", when, event, fields.leg,
                   needs_did=kind == ENDED and incoming and not chain.did, needs_callback=fields.needs_callback,
                   callid=chain.callid, seq=chain.seq)
