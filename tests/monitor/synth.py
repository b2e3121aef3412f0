"""Turns a simulator Script into the lines a monitor would record (the format of data/*.jsonl), without I/O.

The script's steps are applied to a real simulator `Pbx` (the player's own `Legs`: numbering, hidden trunk legs,
a leg moving to another call, a monitored trunk's view) on a virtual clock that follows the player's timing
(visible changes `gap` apart, devices removed `Later`), and the lines are what a Call Control client would see:
one per WebSocket frame, with the participant as a GET right after it would show it, and what XAPI ActiveCalls
lists once the changes of that moment are done (an "active" line where only hidden legs changed). So property
tests can run thousands of random calls in seconds.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import replace
from typing import Any

from tcxhooks.simulator import callcontrol
from tcxhooks.simulator.legs import Legs
from tcxhooks.simulator.state import DEFAULT_DNS, TRUNK, Listener, Pbx
from tcxhooks.simulator.steps import Later, Remove, Script, Upsert, Wait

UPSERT = 0


def dns_of(trunk: bool) -> tuple[Any, ...]:
    """The simulator's DNs; with `trunk`, the admin also monitors the trunk."""
    return tuple(replace(dn, monitored=True) if trunk and dn.type == TRUNK else dn for dn in DEFAULT_DNS)


def lines_of(script: Script, gap: float = 0.05, first_call: int = 698, trunk: bool = False) -> list[dict[str, Any]]:
    pbx = Pbx(dns_of(trunk), first_call)
    listener = Listener()
    pbx.listeners.add(listener)
    legs = Legs(pbx, script)
    legs.callid(next(iter(script.calls)))
    lines: list[dict[str, Any]] = [
        {
            "op": "snapshot",
            "t": 0.0,
            "active": [],
            "participants": [],
            "dns": [{"dn": d.number, "type": d.type} for d in pbx.dns.values() if d.monitored],
        }
    ]
    clock = {"t": 0.0, "visible": -gap, "settled": len(lines)}
    later: list[tuple[float, int, str]] = []

    def advance(to: float) -> None:
        """Time moves on: the lines of the moment just past learn what ActiveCalls listed at its end."""
        if to > clock["t"]:
            for line in lines[int(clock["settled"]) :]:
                line["active"] = sorted(pbx.live_calls())
            clock["settled"], clock["t"] = len(lines), to

    def frames() -> None:
        while not listener.queue.empty():
            event = json.loads(listener.queue.get_nowait())["event"]
            _, _, dn, _, pid = event["entity"].split("/")
            if event["event_type"] == UPSERT:
                status, body = callcontrol.read(pbx, event["entity"])
                if status == 200:
                    lines.append({"op": "upsert", "t": round(clock["t"], 3), "participant": _shape(body)})
            else:
                lines.append({"op": "remove", "t": round(clock["t"], 3), "dn": dn, "id": int(pid)})

    def change(leg: str, apply: Any, dn: str) -> None:
        if pbx.dns[dn].monitored:
            advance(max(clock["t"], clock["visible"] + gap))
            clock["visible"] = clock["t"]
        elif clock["settled"] == len(lines):  # nothing seen now, but ActiveCalls may answer otherwise from now on
            lines.append({"op": "active", "t": round(clock["t"], 3)})
        apply()
        frames()

    def remove(leg: str) -> None:
        if leg in legs.legs:
            change(leg, lambda: legs.remove(leg), legs.legs[leg].dn)

    def due(until: float) -> None:
        while later and later[0][0] <= until:
            when, _, leg = heapq.heappop(later)
            advance(when)
            remove(leg)

    for number, step in enumerate(script.steps):
        if isinstance(step, Wait):
            until = clock["t"] + step.seconds
            due(until)
            advance(until)
            continue
        due(clock["t"])
        if isinstance(step, Upsert):
            change(step.leg, lambda s=step: legs.upsert(s), step.dn)
        elif isinstance(step, Remove):
            remove(step.leg)
        elif isinstance(step, Later):
            heapq.heappush(later, (clock["t"] + step.seconds, number, step.step.leg))
    for leg in list(legs.legs):  # the player removes what a script leaves behind, at once
        remove(leg)
    advance(clock["t"] + gap)
    lines.append({"op": "end", "t": round(clock["t"] + 0.3, 3), "active": sorted(pbx.live_calls())})
    assert not pbx.live_calls()
    return lines


def _shape(raw: dict[str, Any]) -> dict[str, Any]:
    """The monitor's view of the participant JSON (tcxhooks.monitor.participant fields)."""
    return {
        "id": raw["id"],
        "dn": raw["dn"],
        "status": raw["status"],
        "callid": raw["callid"],
        "legid": raw["legid"],
        "party_dn": raw["party_dn"],
        "party_dn_type": raw["party_dn_type"],
        "party_caller_id": raw["party_caller_id"],
        "party_caller_name": raw["party_caller_name"],
        "party_did": raw["party_did"],
        "originated_by_dn": raw["originated_by_dn"],
        "referred_by_dn": raw["referred_by_dn"],
        "on_behalf_of_dn": raw["on_behalf_of_dn"],
    }
