"""What the amoCRM adapter keeps per leg, and what each event adds to it (pure).

    leg = absorb(view, AmoLeg(), recording_wait=600)    # call.ended: the call's facts, waiting for the mp3
    leg.waiting                                         # True: log it when recording.ready comes

A call can be added to amoCRM only once and never changed (`POST /api/v4/calls`: no update), and its
recording link is part of it, so an answered leg is logged when its recording is ready, or when
`recording_wait` passed without one (then a later recording is added as a note).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..event import CrmEvent

LOG_KINDS = ("ended", "recording", "analytics", "recording_timeout")
RECORDING_TIMEOUT = "recording_timeout"  # the adapter's own event: the wait for a leg's recording is over
# what a create request is called in `pending`
CREATES = ("call", "unsorted", "task", "link_note", "transcript_note")


@dataclass(frozen=True)
class AmoLeg:
    # the call, from its call.ended (or a recording event with the ended fields)
    ended: bool = False
    direction: str = ""  # inbound / outbound
    phone: str = ""  # the external number
    line: str = ""  # the number called: the DID, or the extension
    user: str = ""  # the extension that talked, or the queue that missed the call
    started_at: int = 0  # unix seconds
    duration: int = 0
    missed: bool = False
    result: str = ""  # call_result: the ended event's title
    # the recording
    link: str = ""
    recording: str = ""  # "" not yet, "ready", "none" (waited long enough)
    # what amoCRM has of it
    notified: tuple[str, ...] = ()  # extensions whose amo user got (or was not worth) a call notification
    logged: str = ""  # "" not yet, "call", "unsorted", "nowhere" (no entity has the number, no Unsorted)
    not_found: bool = False  # /calls did not add the call: no entity has the number
    entity_type: str = ""  # leads / contacts / companies / customers
    entity_id: int = 0
    logged_link: str = ""  # the recording link the call was logged with
    task_id: int = 0
    link_note: bool = False
    transcript_note: bool = False
    # a create request that may have reached amoCRM before the dispatcher stored its answer
    pending: str = ""
    search: str = ""  # the next look-up page for `pending`: "leads:1", "contacts:2", …

    @property
    def waiting(self) -> bool:
        """An answered leg whose recording may still come."""
        return self.ended and not self.missed and not self.logged and self.recording == ""

    def dump(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def load(cls, raw: Mapping[str, Any] | None) -> AmoLeg:
        if not raw:
            return cls()
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        known["notified"] = tuple(known.get("notified", ()))
        return cls(**known)


def started_at(event: CrmEvent) -> int:
    """When the call reached the PBX: the contract's started_at, else worked back from the end."""
    if event.started_at is not None:
        return int(event.started_at)
    return int(event.occurred_at - event.duration - event.ring_seconds)


def absorb(event: CrmEvent, leg: AmoLeg, recording_wait: float, links: bool = True) -> AmoLeg:
    """The leg once this event is known (nothing is sent here). Without `links` (recording = none)
    no recording is waited for or sent."""
    if event.kind == "ended" or (event.kind == "recording" and event.finishtype and not leg.ended):
        leg = replace(
            leg,
            ended=True,
            direction="outbound" if event.direction == "out" else "inbound",
            phone=event.caller,
            line=event.did or event.user,
            user=event.user,
            started_at=started_at(event),
            duration=event.duration,
            missed=event.finishtype == "Missed",
            result=event.title,
        )
        if (recording_wait <= 0 or not links) and not leg.recording:
            leg = replace(leg, recording="none")
    if event.kind == "recording" and event.links and links:
        leg = replace(leg, link=event.links[0], recording="ready")
    if event.kind == RECORDING_TIMEOUT and leg.recording == "":
        leg = replace(leg, recording="none")
    return leg
