"""Plays a trace of `tcxhooks capture` (docs/3cx.md §8) as a scenario: the participants the monitor saw appear,
change and go at the recorded pace, so a CRM developer sees a real PBX's sequences arrive.

    script = script_of(lines)                   # a Script for the player (call and participant numbers are new)
    dns = dns_of(lines)                         # the DNs the trace shows (`tcxhooks sim --trace` serves these)

Only what the monitor saw is played: monitored DNs' participants (their Call Control fields; fields this
simulator does not model are left out), from the trace's snapshots, upserts and removes. A call the PBX still
listed in `ActiveCalls` after its last monitored participant left (a transfer to an outside number) keeps a
hidden trunk participant (the number it went on to, as that answer gives it) until the trace's `ActiveCalls`
stops listing it. Status and directory changes are
not played.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .state import EXTENSION, TRUNK, TRUNK_DN, Dn, Participant
from .steps import Remove, Script, Step, Upsert, Wait

_PARTICIPANT = re.compile(r"^/callcontrol/([^/]+)/participants/(\d+)$")
_FIELDS = {f.name for f in dataclasses.fields(Participant)} - {"id", "dn", "callid", "legid"}
_KINDS = ("snapshot", "upsert", "remove", "xapi")


class TraceError(ValueError):
    """Not a trace the simulator can play; the message says why."""


def records_of(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The records of a trace's JSON lines, header first; TraceError names a line that is not one."""
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise TraceError(f"trace line {number} is not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("t"), (int, float)) or "kind" not in record:
            raise TraceError(f"trace line {number} is not a trace record")
        out.append(record)
    if not out or out[0]["kind"] != "header":
        raise TraceError("the first line is not a trace header (is this a `tcxhooks capture` file?)")
    return out


def dns_of(records: list[dict[str, Any]]) -> tuple[Dn, ...]:
    """Every DN the trace describes, monitored, with this simulator's hidden trunk for outside legs."""
    types: dict[str, str] = dict((records[0].get("facts") or {}).get("dn_types") or {})
    for record in records:
        if record["kind"] == "snapshot" and isinstance(record.get("body"), list):
            types.update(
                {
                    str(i["dn"]): str(i.get("type") or EXTENSION)
                    for i in record["body"]
                    if isinstance(i, dict) and "dn" in i
                }
            )
    dns = tuple(Dn(dn, kind, f"{kind.removeprefix('W').capitalize()} {dn}") for dn, kind in sorted(types.items()))
    return dns if TRUNK_DN in types else (*dns, Dn(TRUNK_DN, TRUNK, "Trunk", monitored=False))


def _participant(raw: Any, entity: str) -> tuple[str, dict[str, Any]] | None:
    """(leg name, participant JSON) of a recorded participant, or None when it is not one."""
    match = _PARTICIPANT.match(entity)
    if match is None or not isinstance(raw, dict) or not isinstance(raw.get("callid"), int):
        return None
    return f"{match.group(1)}/{match.group(2)}", raw


_ID = re.compile(r"\bId eq (\d+)")


@dataclass(frozen=True)
class _Listing:
    """One recorded `ActiveCalls` answer: when, which calls it was asked about (None: all), which it listed,
    and each listed call's parties (`Caller`, `Callee`: the number, then the name when it says more)."""

    t: float
    asked: frozenset[int] | None
    listed: frozenset[int]
    parties: dict[int, tuple[str, str]] = dataclasses.field(default_factory=dict)

    def concerns(self, callid: int) -> bool:
        return self.asked is None or callid in self.asked


def _listings(records: list[dict[str, Any]]) -> list[_Listing]:
    out = []
    for record in records:
        rows = record.get("body", {}).get("value") if isinstance(record.get("body"), dict) else None
        if (
            record["kind"] != "xapi"
            or not str(record.get("path", "")).endswith("/ActiveCalls")
            or not isinstance(rows, list)
        ):
            continue
        flt = str((record.get("params") or {}).get("$filter", ""))
        asked = frozenset(int(n) for n in _ID.findall(flt)) if flt else None
        listed = [r for r in rows if isinstance(r, dict) and isinstance(r.get("Id"), int)]
        out.append(
            _Listing(
                float(record["t"]),
                asked,
                frozenset(r["Id"] for r in listed),
                {
                    r["Id"]: (str(r.get("Caller") or ""), str(r.get("Callee") or ""))
                    for r in listed
                    if "Caller" in r or "Callee" in r
                },
            )
        )
    return out


class _Builder:
    def __init__(self, start: float, listings: list[_Listing]) -> None:
        self.clock = start
        self.listings = listings
        self.steps: list[Step] = []
        self.calls: dict[str, str] = {}  # call name → inbound / outbound / internal, in order of appearance
        self.live: dict[str, dict[str, Any]] = {}  # leg → its participant JSON now
        self.hidden: dict[int, str] = {}  # trace callid → its hidden trunk leg

    def at(self, moment: float) -> None:
        if moment > self.clock:
            self.steps.append(Wait(round(moment - self.clock, 3)))
            self.clock = moment

    def upsert(self, leg: str, raw: dict[str, Any]) -> None:
        callid = int(raw["callid"])
        name = f"c{callid}"
        if name not in self.calls:
            external = raw.get("party_dn_type") == TRUNK
            self.calls[name] = ("inbound" if raw.get("status") == "Ringing" else "outbound") if external else "internal"
        self.live[leg] = raw
        self.steps.append(Upsert(leg, leg.split("/")[0], name, {k: v for k, v in raw.items() if k in _FIELDS}))
        hidden = self.hidden.pop(callid, None)
        if hidden is not None:
            self.steps.append(Remove(hidden))

    def remove(self, leg: str) -> None:
        gone = self.live.pop(leg, None)
        if gone is None:
            return
        self.steps.append(Remove(leg))
        callid = int(gone["callid"])
        if any(int(p["callid"]) == callid for p in self.live.values()):
            return
        # The next ActiveCalls answer about this call tells whether it went on beyond the monitored DNs.
        after = next((x for x in self.listings if x.t >= self.clock and x.concerns(callid)), None)
        if after is not None and callid in after.listed:
            self.hidden[callid] = f"{TRUNK_DN}/outside-{callid}"
            # with no monitored DN left, ActiveCalls shows the number the call went on to in the inside's place
            caller, callee = next(
                (x.parties[callid] for x in self.listings if x.t >= self.clock and callid in x.parties), ("", "")
            )
            number, _, name = (caller if self.calls.get(f"c{callid}") == "outbound" else callee).partition(" ")
            self.steps.append(
                Upsert(
                    self.hidden[callid],
                    TRUNK_DN,
                    f"c{callid}",
                    {
                        "status": "Connected",
                        "party_caller_id": number,
                        "party_caller_name": name,
                        "party_dn": TRUNK_DN,
                        "party_dn_type": TRUNK,
                    },
                )
            )

    def snapshot(self, body: list[Any]) -> None:
        seen: dict[str, dict[str, Any]] = {}
        for info in body:
            for raw in (info.get("participants") or []) if isinstance(info, dict) else []:
                found = _participant(raw, f"/callcontrol/{info.get('dn')}/participants/{raw.get('id')}")
                if found is not None:
                    seen[found[0]] = found[1]
        for leg in [leg for leg in self.live if leg not in seen]:
            self.remove(leg)
        for leg, raw in sorted(seen.items(), key=lambda item: (item[1]["callid"], item[1].get("legid", 0))):
            if self.live.get(leg) != raw:
                self.upsert(leg, raw)

    def listing(self, moment: float) -> None:
        """An ActiveCalls answer recorded now: a hidden call it no longer lists has ended outside too."""
        for listing in (x for x in self.listings if x.t == moment):
            for callid in [c for c in self.hidden if listing.concerns(c) and c not in listing.listed]:
                self.steps.append(Remove(self.hidden.pop(callid)))


def script_of(records: list[dict[str, Any]], name: str = "trace") -> Script:
    """The trace's participant changes as a Script on legs named `<dn>/<trace participant id>`."""
    builder = _Builder(float(records[0]["t"]), _listings(records))
    for record in records[1:]:
        kind = record["kind"]
        if kind not in _KINDS:
            continue
        builder.at(float(record["t"]))
        if kind == "snapshot" and isinstance(record.get("body"), list):
            builder.snapshot(record["body"])
        elif kind == "upsert":
            found = _participant(record.get("body"), str(record.get("entity", "")))
            if found is not None:
                builder.upsert(*found)
        elif kind == "remove":
            builder.remove(_leg(str(record.get("entity", ""))))
        elif kind == "xapi":
            builder.listing(float(record["t"]))
    if not builder.calls:
        raise TraceError("the trace holds no participant to play")
    return Script(name, tuple(builder.steps), builder.calls)


def _leg(entity: str) -> str:
    match = _PARTICIPANT.match(entity)
    return f"{match.group(1)}/{match.group(2)}" if match else ""
