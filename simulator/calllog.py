"""The call log (XAPI `ReportCallLogData`, docs/3cx.md §5.6), built from the participants the PBX really had.

    log = CallLog(pbx.dns)                # the player feeds it:
    log.seen(participant, kind, now)      # every Upsert (kind: inbound / outbound / internal)
    log.gone(participant_id, now)         # every Remove
    log.rows(start, end)                  # rows of the ended calls that started in [start, end], by end
    log.hold(True); …; log.hold(False)    # rows of calls ending meanwhile show only then (a slow PBX; tests)

A call's rows appear once its last participant (hidden trunk legs included) has gone: the real log is
written after the call. One row per DN the call reached, in the order it reached them: the source is the
call's first participant (the caller's trunk leg, or the dialling extension), the destination that DN (a
later trunk leg is a number called out, e.g. a transfer to an outside number). A row is `Answered` when its
destination (an extension, or the far end of a number called out) reached `Connected`; queue, IVR and
ring-group rows only route the call and are never answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .odata import duration, iso
from .state import EXTENSION, IVR, PARKING, QUEUE, RINGGROUP, SPECIALMENU, TRUNK, Dn, Participant

FALSIFIABLE = ("answered", "answered_by", "direction")  # what a test can make the log say wrongly
MAX_CALLS = 20_000  # ended calls kept (a real PBX caps one report at 20,000 rows by default)
# Numeric DN types as integrators map them (docs/3cx.md §5.6, unverified).
TYPE_CODES = {EXTENSION: 0, TRUNK: 1, QUEUE: 4, SPECIALMENU: 5, IVR: 6, PARKING: 8, RINGGROUP: 16}
CALL_TYPES = {EXTENSION: "Extension", TRUNK: "External", QUEUE: "Queue", IVR: "Digital Receptionist"}
FIELDS = (
    "CallId",
    "CallHistoryId",
    "MainCallHistoryId",
    "CdrId",
    "SegmentId",
    "Indent",
    "StartTime",
    "SourceDn",
    "SourceCallerId",
    "SourceDisplayName",
    "SourceType",
    "DestinationDn",
    "DestinationCallerId",
    "DestinationDisplayName",
    "DestinationType",
    "RingingDuration",
    "TalkingDuration",
    "Answered",
    "Direction",
    "CallType",
    "Status",
    "RecordingUrl",
)


@dataclass
class _Leg:
    dn: str
    type: str
    number: str  # caller id: the external number of a trunk leg, else the DN
    name: str
    began: float
    answered: float | None = None
    ended: float | None = None


@dataclass
class _Call:
    callid: int
    kind: str
    began: float
    falsify: str
    legs: dict[int, _Leg] = field(default_factory=dict)  # participant id → leg, in arrival order
    live: set[int] = field(default_factory=set)


class CallLog:
    def __init__(self, dns: Mapping[str, Dn]) -> None:
        self.dns = dns
        self._open: dict[int, _Call] = {}
        self._where: dict[int, int] = {}  # participant id → callid
        self._lies: dict[int, str] = {}  # callid → the field its rows will get wrong
        self._ended: deque[tuple[float, list[dict[str, Any]]]] = deque(maxlen=MAX_CALLS)  # (call start, rows)
        self._held: list[tuple[float, list[dict[str, Any]]]] | None = None  # written late, while held

    def hold(self, on: bool) -> None:
        """While on, the rows of calls that end are kept back; off writes them (a PBX slow to write its log)."""
        if on and self._held is None:
            self._held = []
        elif not on and self._held is not None:
            self._ended.extend(self._held)
            self._held = None

    def falsify(self, callid: int, what: str) -> None:
        """The rows of `callid` will report `what` (one of FALSIFIABLE) wrongly (a test knob)."""
        if what not in FALSIFIABLE:
            raise ValueError(f"cannot falsify {what!r}; one of {', '.join(FALSIFIABLE)}")
        self._lies[callid] = what

    def seen(self, p: Participant, kind: str, now: float) -> None:
        before = self._where.get(p.id)
        if before is not None and before != p.callid:  # attended transfer: the leg moved to another call
            self.gone(p.id, now)
        call = self._open.get(p.callid)
        if call is None:
            call = self._open[p.callid] = _Call(p.callid, kind, now, self._lies.pop(p.callid, ""))
        leg = call.legs.get(p.id)
        if leg is None:
            dn = self.dns[p.dn]
            # A trunk leg stands for the outside party: its number and name are the participant's party fields.
            external = dn.type == TRUNK
            leg = call.legs[p.id] = _Leg(
                p.dn,
                dn.type,
                p.party_caller_id if external else p.dn,
                p.party_caller_name if external else dn.name,
                now,
            )
        if p.status == "Connected" and leg.answered is None:
            leg.answered = now
        call.live.add(p.id)
        self._where[p.id] = p.callid

    def gone(self, participant_id: int, now: float) -> None:
        callid = self._where.pop(participant_id, None)
        call = self._open.get(callid) if callid is not None else None
        if call is None:
            return
        call.live.discard(participant_id)
        call.legs[participant_id].ended = now
        if not call.live:
            del self._open[call.callid]
            written = (call.began, _falsified(_rows(call, now), call.falsify, self.dns))
            (self._ended if self._held is None else self._held).append(written)

    def rows(self, start: float, end: float) -> list[dict[str, Any]]:
        return [row for began, rows in self._ended if start <= began <= end for row in rows]


def _party(leg: _Leg, prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}Dn": leg.dn,
        f"{prefix}CallerId": leg.number,
        f"{prefix}DisplayName": leg.name,
        f"{prefix}Type": TYPE_CODES.get(leg.type, 0),
    }


def _direction(kind: str, leg: _Leg) -> str:
    if kind == "internal":
        return "Internal"
    if kind == "outbound" or leg.type == TRUNK:
        return "Outbound"
    return "Inbound Queue" if leg.type == QUEUE else "Inbound"


def _rows(call: _Call, now: float) -> list[dict[str, Any]]:
    origin, *reached = call.legs.values()
    guid = f"00000000-0000-0000-0000-{call.callid:012d}"
    rows = []
    for index, leg in enumerate(reached, 1):
        ended = leg.ended or now
        answered = leg.answered if leg.type in (EXTENSION, TRUNK) else None
        routed_on = leg.type in (QUEUE, IVR, RINGGROUP) and index < len(reached)
        rows.append(
            {
                "CallId": call.callid,
                "CallHistoryId": guid,
                "MainCallHistoryId": guid,
                "CdrId": f"00000000-0000-0000-{index:04d}-{call.callid:012d}",
                "SegmentId": index,
                "Indent": 0,
                "StartTime": iso(leg.began),
                **_party(origin, "Source"),
                **_party(leg, "Destination"),
                "RingingDuration": duration((answered or ended) - leg.began),
                "TalkingDuration": duration(ended - answered if answered else 0),
                "Answered": answered is not None,
                "Direction": _direction(call.kind, leg),
                "CallType": CALL_TYPES.get(leg.type, "System"),
                "Status": "Answered" if answered else "Redirected" if routed_on else "Unanswered",
                "RecordingUrl": None,
            }
        )
    return rows


def _falsified(rows: list[dict[str, Any]], what: str, dns: Mapping[str, Dn]) -> list[dict[str, Any]]:
    """The rows with one field made wrong on purpose (`what` = "" leaves them true)."""
    ext = TYPE_CODES[EXTENSION]
    if what == "direction":
        for row in rows:
            row["Direction"] = "Inbound" if row["Direction"] == "Outbound" else "Outbound"
    elif what == "answered":
        answered = [row for row in rows if row["Answered"]]
        for row in answered or [r for r in rows if r["DestinationType"] in (ext, TYPE_CODES[TRUNK])][-1:]:
            row["Answered"] = not answered
            row["Status"] = "Unanswered" if answered else "Answered"
    elif what == "answered_by":
        used = {row[key] for row in rows for key in ("SourceDn", "DestinationDn")}
        other = next(d.number for d in dns.values() if d.type == EXTENSION and d.number not in used)
        for row in (r for r in rows if r["Answered"]):
            key = "DestinationDn" if row["DestinationType"] == ext else "SourceDn"
            if row[key.replace("Dn", "Type")] == ext:
                row[key] = other
    return rows
