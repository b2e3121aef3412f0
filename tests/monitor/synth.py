"""Turns a simulator Script into the lines a monitor would record (the format of data/*.jsonl), without I/O.

Mirrors `tcxhooks.simulator.player` (participant ids, call numbers, leg ids, hidden trunk legs, a leg moving
to another call) on a virtual clock, so property tests can run thousands of random calls in seconds.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from tcxhooks.simulator.state import DEFAULT_DNS, TRUNK_DN, Participant
from tcxhooks.simulator.steps import Remove, Script, Upsert, Wait

MONITORED = {dn.number: dn for dn in DEFAULT_DNS if dn.monitored}


def lines_of(script: Script, gap: float = 0.05, first_call: int = 698) -> list[dict[str, Any]]:
    t = 0.0
    numbers: dict[str, int] = {}
    legs: dict[str, Participant] = {}
    next_pid, next_call = 1, first_call
    leg_ids: dict[int, int] = {}
    lines: list[dict[str, Any]] = [{"op": "snapshot", "t": 0.0, "active": [], "participants": [],
                                    "dns": [{"dn": d.number, "type": d.type} for d in MONITORED.values()]}]

    def active() -> list[int]:
        return sorted({p.callid for p in legs.values()})

    def callid(name: str) -> int:
        nonlocal next_call
        if name not in numbers:
            numbers[name] = next_call
            leg_ids[next_call] = 3 if script.calls.get(name) == "inbound" else 1
            next_call += 1
        return numbers[name]

    callid(next(iter(script.calls)))
    for step in script.steps:
        if isinstance(step, Wait):
            t += step.seconds
        elif isinstance(step, Upsert):
            number = callid(step.call)
            current = legs.get(step.leg)
            if current is None:
                current = Participant(id=next_pid, status="", dn=step.dn, callid=number, legid=leg_ids[number])
                next_pid += 1
                leg_ids[number] += 1
            elif current.callid != number:
                current = replace(current, callid=number, legid=leg_ids[number])
                leg_ids[number] += 1
            current = replace(current, **dict(step.fields))
            legs[step.leg] = current
            if step.dn in MONITORED:
                lines.append({"op": "upsert", "t": round(t, 3), "participant": _shape(current), "active": active()})
                t += gap
        elif isinstance(step, Remove):
            gone = legs.pop(step.leg, None)
            if gone is not None and gone.dn in MONITORED:
                lines.append({"op": "remove", "t": round(t, 3), "dn": gone.dn, "id": gone.id, "active": active()})
                t += gap
    for name in list(legs):
        gone = legs.pop(name)
        if gone.dn in MONITORED:
            lines.append({"op": "remove", "t": round(t, 3), "dn": gone.dn, "id": gone.id, "active": active()})
            t += gap
    lines.append({"op": "end", "t": round(t + 0.3, 3), "active": []})
    assert all(p.dn == TRUNK_DN for p in legs.values())
    return lines


def _shape(p: Participant) -> dict[str, Any]:
    """The monitor's view of the participant JSON (tcxhooks.monitor.participant fields)."""
    raw = p.to_json()
    return {"id": raw["id"], "dn": raw["dn"], "status": raw["status"], "callid": raw["callid"], "legid": raw["legid"],
            "party_dn": raw["party_dn"], "party_dn_type": raw["party_dn_type"],
            "party_caller_id": raw["party_caller_id"], "party_caller_name": raw["party_caller_name"],
            "party_did": raw["party_did"], "originated_by_dn": raw["originated_by_dn"],
            "referred_by_dn": raw["referred_by_dn"], "on_behalf_of_dn": raw["on_behalf_of_dn"]}
