"""The call scenarios of docs/webhooks.md §6 as the events the dispatcher stores, for adapter tests.

for event in SCENARIOS["blind transfer"]: ...       # tcxhooks.v1.Event, as the monitor publishes
view(event)                                         # the CrmEvent an adapter reads
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.dispatcher.crm import CrmEvent
from tcxhooks.v1 import common_pb2, events_pb2

CHAIN = "251125184500_698"
CALLER = "79161234567"
DID = "74951234567"
STARTED = 1_764_085_500.0  # 2025-11-25 18:45:00 +03:00
RING = 5

_TYPES = {"ringing": 1, "ringing_stopped": 2, "answered": 3, "ended": 4, "dialing": 5}
_DIRECTIONS = {
    "in": common_pb2.DIRECTION_INCOMING,
    "out": common_pb2.DIRECTION_OUTGOING,
    "internal": common_pb2.DIRECTION_INTERNAL,
}
_TRTYPES = {
    "NotDef": common_pb2.TRANSFER_TYPE_NOT_DEF,
    "Blind": common_pb2.TRANSFER_TYPE_BLIND,
    "Accomp": common_pb2.TRANSFER_TYPE_ACCOMP,
}


def _stamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def ev(
    kind: str,
    link: int,
    user: str = "",
    *,
    direction: str = "in",
    did: str = DID,
    caller: str = CALLER,
    trtype: str = "NotDef",
    finish: str = "",
    transfer: bool = False,
    duration: int = 0,
    title: str = "",
    callback: bool | None = None,
    queue: str = "",
    ring: int = 0,
    chain: str = CHAIN,
    start: float = STARTED,
    at: float | None = None,
) -> events_pb2.Event:
    """One call event of `chain` at link `link` (`kind`: ringing, ringing_stopped, answered, ended, dialing)."""
    call_id = f"{chain}-{link}"
    call = events_pb2.CallEvent(
        type=_TYPES[kind],
        call_id=call_id,
        direction=_DIRECTIONS[direction],
        caller_id=caller,  # type: ignore[arg-type]
        did=did,
        user=user,
        transfer_type=_TRTYPES[trtype],
        transfer=transfer,
        title=title,
        duration_seconds=duration,
        ring_seconds=ring,
        queue=queue,
    )
    if kind in ("ringing", "ringing_stopped", "dialing"):
        call.user_type = common_pb2.USER_TYPE_QUEUE if user.startswith("8") else common_pb2.USER_TYPE_EXT
    if kind == "ringing_stopped":
        call.reason = common_pb2.RINGING_STOPPED_REASON_ANSWERED_ELSEWHERE
    if finish:
        call.finish_type = common_pb2.FINISH_TYPE_OK if finish == "Ok" else common_pb2.FINISH_TYPE_MISSED
    if callback is not None:
        call.callback, call.has_callback = callback, True
    when = start + 10 * link + (5 if kind == "ended" else 0) if at is None else at
    return events_pb2.Event(event_id=f"{call_id}:{kind}:{user}", chain=chain, occur_time=_stamp(when), call=call)


def ended(
    link: int, user: str, finish: str = "Ok", transfer: bool = False, duration: int = 65, **extra: Any
) -> events_pb2.Event:
    """The leg's end, `RING` seconds of ringing and `duration` of talk after the call reached the PBX."""
    title = "Main line: talk 0:01:05" if finish == "Ok" else "Main line: missed"
    talk = duration if finish == "Ok" else 0
    extra.setdefault("at", extra.get("start", STARTED) + RING + talk)
    return ev("ended", link, user, finish=finish, transfer=transfer, duration=talk, ring=RING, title=title, **extra)


def recording(link: int, url: str = "", chain: str = CHAIN, start: float = STARTED) -> events_pb2.Event:
    call_id = f"{chain}-{link}"
    rec = events_pb2.RecordingReady(
        call_id=call_id,
        files=[
            events_pb2.RecordingFile(
                url=url or f"https://media.example/r/{call_id}/1.mp3", duration_seconds=60.5, size_bytes=480000
            )
        ],
    )
    return events_pb2.Event(event_id=f"{call_id}:recording", chain=chain, occur_time=_stamp(start + 100), recording=rec)


def analytics(link: int, chain: str = CHAIN, start: float = STARTED) -> events_pb2.Event:
    call_id = f"{chain}-{link}"
    result = events_pb2.AnalyticsReady(
        call_id=call_id,
        text="operator: Hello\nclient: Where is my order?",
        summary="The caller asked where the order is.",
        language="en-US",
        backend="offline",
    )
    return events_pb2.Event(
        event_id=f"{call_id}:analytics", chain=chain, occur_time=_stamp(start + 200), analytics=result
    )


def view(event: events_pb2.Event) -> CrmEvent:
    return CrmEvent.of(event)


def scenarios(chain: str = CHAIN, start: float = STARTED) -> dict[str, list[events_pb2.Event]]:
    """The scenarios of docs/webhooks.md §6 for one call chain that reached the PBX at `start`."""
    c: dict[str, Any] = {"chain": chain, "start": start}
    out = {"direction": "out", "did": ""}
    return {
        "inbound answered": [
            ev("ringing", 0, "101", **c),
            ev("answered", 1, "101", **c),
            ended(1, "101", **c),
            recording(1, **c),
            analytics(1, **c),
        ],
        "queue ring-all": [
            ev("ringing", 0, "800", **c),
            ev("ringing", 0, "101", queue="800", **c),
            ev("ringing", 0, "102", queue="800", **c),
            ev("ringing_stopped", 0, "101", **c),
            ev("answered", 1, "102", **c),
            ended(1, "102", queue="800", **c),
            recording(1, **c),
        ],
        "queue abandoned with callback": [
            ev("ringing", 0, "800", **c),
            ev("ringing", 0, "101", queue="800", **c),
            ev("ringing", 0, "102", queue="800", **c),
            ended(0, "800", "Missed", callback=True, queue="800", **c),
        ],
        "blind transfer": [
            ev("ringing", 0, "101", **c),
            ev("answered", 1, "101", **c),
            ev("ringing", 2, "102", **c),
            ended(1, "101", transfer=True, duration=20, **c),
            ev("answered", 2, "102", trtype="Blind", **c),
            ended(2, "102", duration=40, **c),
            recording(1, **c),
            recording(2, **c),
        ],
        "attended transfer": [
            ev("ringing", 0, "101", **c),
            ev("answered", 1, "101", **c),
            ev("answered", 2, "102", trtype="Accomp", **c),
            ended(1, "101", transfer=True, duration=30, **c),
            ended(2, "102", duration=50, **c),
            recording(1, **c),
            recording(2, **c),
        ],
        "outbound answered": [ev("answered", 1, "101", **c, **out), ended(1, "101", **c, **out), recording(1, **c)],
        "outbound not answered": [ended(0, "101", "Missed", **c, **out)],
    }


SCENARIOS = scenarios()
