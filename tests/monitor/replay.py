"""Replays recorded Call Control sequences (data/*.jsonl) through the call graph, as the engine would.

bodies = replay(lines)                          # form bodies per call prefix, in order
bodies = replay(lines, drop=5)                  # line 5 lost, a resync right after it
bodies = replay(lines, restart=5)               # process killed after line 5, restored, resynced
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tcxhooks.dispatcher.payloads import render
from tcxhooks.monitor.callgraph import CallGraph, Chain, Settings
from tcxhooks.monitor.engine import rows_of
from tcxhooks.monitor.enrich import Enricher
from tcxhooks.monitor.facts import Facts, Rule
from tcxhooks.monitor.participant import Participant
from tcxhooks.v1 import events_pb2

DATA = Path(__file__).parent / "data"
TRUNK, DID, RULE = "10000", "74951234567", "Main line"


def load(name: str) -> list[dict[str, Any]]:
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class FakeXapi:
    """Answers the enricher's callback report: `callbacks` ordered in every queue."""

    def __init__(self, callbacks: int) -> None:
        self.callbacks = callbacks

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        assert "ReportQueueCallbacks" in path, path
        return {
            "value": [{"QueueDnNumber": path.split("queueDnStr='")[1].split("'")[0], "CallbacksCount": self.callbacks}]
        }


def new_graph(settings: Settings) -> CallGraph:
    return CallGraph(settings, Facts(trunk_dids={TRUNK: [DID]}, rules=[Rule(RULE, DID)]))


def replay(
    lines: list[dict[str, Any]],
    settings: Settings | None = None,
    drop: int | None = None,
    restart: int | None = None,
    callbacks: int = 0,
) -> dict[str, list[list[tuple[str, str]]]]:
    settings = settings or Settings(grace=1.0, ringing_stopped=True, timezone="UTC")
    graph = new_graph(settings)
    emitted = []
    held: dict[str, dict[str, Any]] = {}  # what the PBX has now (to build a resync snapshot)
    active: set[int] = set()
    now = 0.0

    def decide(until: float) -> None:
        for callid in graph.due(until):
            graph.decide(callid, until, active)
        emitted.extend(graph.drain())

    def settle(at: float) -> None:
        """What the engine does right after a change: ActiveCalls asked at once for calls whose legs all left."""
        if graph.settling():
            graph.settle(at, active)
        emitted.extend(graph.drain())
        failed = [a for a in graph.anomalies if a[0] == "participant_failed"]
        assert not failed, failed
        graph.anomalies.clear()

    def snapshot_at(t: float) -> None:
        graph.reconcile([Participant.from_dict(p) for p in held.values()], t)
        emitted.extend(graph.drain())

    for index, line in enumerate(lines):
        now = 1000.0 + line["t"]
        decide(now)
        op = line["op"]
        if op == "snapshot":
            for info in line["dns"]:
                graph.facts.dn_types[info["dn"]] = info["type"]
            held = {f"{p['dn']}/{p['id']}": p for p in line["participants"]}
            if index != drop:
                snapshot_at(now)
        elif op == "upsert":
            part = line["participant"]
            for key in [k for k, p in held.items() if p["id"] == part["id"] and p["dn"] == part["dn"]]:
                del held[key]
            held[f"{part['dn']}/{part['id']}"] = part
            if index != drop:
                graph.upsert(Participant.from_dict(part), now)
        elif op == "remove":
            held.pop(f"{line['dn']}/{line['id']}", None)
            if index != drop:
                graph.remove(line["dn"], line["id"], now)
        active = set(line["active"])
        emitted.extend(graph.drain())
        if index == drop:
            snapshot_at(now)  # the socket came back at once: a fresh GET /callcontrol
        settle(now)
        if index == restart:
            saved = [Chain.from_dict(json.loads(json.dumps(c.to_dict()))) for c in graph.chains.values()]
            types, finished = dict(graph.facts.dn_types), dict(graph.finished)
            graph = new_graph(settings)
            graph.facts.dn_types.update(types)
            graph.restore(saved)
            graph.finished.update(finished)  # what the registry's known calls give back
            snapshot_at(now)
            settle(now)
    decide(now + 60)
    return render_all(emitted, callbacks)


def render_all(emitted: list[Any], callbacks: int) -> dict[str, list[list[tuple[str, str]]]]:
    enricher = Enricher(FakeXapi(callbacks), Facts(rules=[Rule(RULE, DID)]), "en")  # type: ignore[arg-type]
    out: dict[str, list[list[tuple[str, str]]]] = {}
    for item in emitted:
        for row in rows_of(item):
            if row.target != "dispatcher":
                continue
            event = events_pb2.Event.FromString(row.payload)
            if event.call.type == events_pb2.CALL_EVENT_TYPE_DIALING:
                continue  # opt-in: not among the webhooks a default endpoint gets (tests/monitor/test_dialing.py)
            if event.call.type == events_pb2.CALL_EVENT_TYPE_ENDED:
                event.call.CopyFrom(asyncio.run(enricher.ended(event.call, item.occur, row.needs)))
            body = render(event, "form").decode()
            out.setdefault(event.chain, []).append(parse_qsl(body, keep_blank_values=True))
    return out
