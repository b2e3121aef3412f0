"""Replays a trace through the monitor's real call graph and engine, with no PBX and no dispatcher.

    result = await replay(trace.read("trace.jsonl"))      # result.events: what the monitor would publish, in order

The graph starts from the calls the monitor held when the capture began (the header), then every applied
change is fed to the real `Engine` at the time it was recorded, on a virtual clock that also runs what the
engine's loops do live: its decisions every TICK (grace periods) and, for a call whose last leg left, the
ActiveCalls question at once and again every SETTLE_EVERY while the PBX still lists the call. The XAPI
reads the engine and the enricher make (ActiveCalls, start times, the inbound-call and callback reports)
are answered by the real `PbxClient` from the answers recorded for the same request, the one nearest in
time. Its state lives in an in-memory store. Status events, recordings and analytics are not replayed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass

from tcxhooks.platform.store import open_store
from tcxhooks.v1 import events_pb2

from ..callgraph import CallGraph, Chain, Settings
from ..config import PbxConfig
from ..engine import SETTLE_EVERY, TICK, Engine
from ..enrich import Enricher
from ..errors import PbxError
from ..facts import Facts, Rule
from ..participant import Participant
from ..pbx.callcontrol import parse_snapshot
from ..pbx.client import PbxClient
from ..pbx.http import InProcess, PbxAnswer, PbxRequest, Unreachable
from ..registry import OutRow, Registry
from .trace import Record, Trace

URL = "http://trace.invalid"
AFTER = 120.0  # virtual seconds the decisions run on after the last record
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?")
_PARTICIPANT = re.compile(r"^/callcontrol/([^/]+)/participants/(\d+)$")


@dataclass
class Replayed:
    t: float  # virtual unix time it was handed to the dispatcher
    event: events_pb2.Event


@dataclass
class Result:
    events: list[Replayed]
    skipped: list[str]  # records that could not be applied ("line N (kind): why")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _route(path: str, params: dict[str, str], with_filter: bool) -> str:
    """A request without its times (they follow the replay's clock, not the capture's)."""
    kept = {k: _TIME.sub("T", v) for k, v in sorted(params.items()) if with_filter or k != "$filter"}
    return _TIME.sub("T", path) + "?" + json.dumps(kept)


class RecordedXapi:
    """Answers XAPI GETs (an InProcess handler) from the trace's `xapi` records: the answer recorded for the same
    request (else the same request with another `$filter`) nearest to the replay's clock."""

    def __init__(self, records: list[Record], clock: Clock) -> None:
        self.clock = clock
        self.answers: dict[str, list[Record]] = {}
        for record in records:
            if record["kind"] == "xapi" and isinstance(record.get("path"), str):
                params = {str(k): str(v) for k, v in (record.get("params") or {}).items()}
                for exact in (True, False):
                    self.answers.setdefault(_route(record["path"], params, exact), []).append(record)

    async def handle(self, request: PbxRequest) -> PbxAnswer:
        if request.path == "/connect/token":
            return PbxAnswer.json(200, {"token_type": "Bearer", "expires_in": 86400, "access_token": "replay"})
        path, params = request.path, request.params
        found = self.answers.get(_route(path, params, True)) or self.answers.get(_route(path, params, False))
        if not found:
            return PbxAnswer.json(404, {"error": {"code": "", "message": f"{path} is not in the trace"}})
        now = self.clock()
        record = min(reversed(found), key=lambda r: abs(float(r["t"]) - now))
        if "body" in record:
            return PbxAnswer.json(200, record["body"])
        if record.get("status"):
            return PbxAnswer.json(int(record["status"]), {"error": {"code": "", "message": record.get("error")}})
        raise Unreachable(str(record.get("error") or "the PBX could not be reached"))


class Collector:
    """The engine's hand-over: keeps the committed outbox rows instead of publishing them."""

    def __init__(self) -> None:
        self.rows: list[OutRow] = []

    def add(self, rows: list[OutRow]) -> None:
        self.rows.extend(rows)

    async def take(self, enricher: Enricher) -> list[events_pb2.Event]:
        """The events among the rows kept so far, completed as the publisher completes them before sending."""
        rows, self.rows = self.rows, []
        events = []
        for row in rows:
            if row.target != "dispatcher":
                continue
            event = row.message if row.message is not None else events_pb2.Event.FromString(row.payload)
            if event.call.type == events_pb2.CALL_EVENT_TYPE_ENDED:
                occur = event.occur_time.ToSeconds() + event.occur_time.nanos / 1e9
                event.call.CopyFrom(await enricher.ended(event.call, occur, row.needs))
            events.append(event)
        return events


def _settings(header: Record, override: Settings | None) -> Settings:
    if override is not None:
        return override
    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in header["settings"]["graph"].items() if k in known})


def _graph(header: Record, settings: Settings) -> CallGraph:
    facts = header.get("facts") or {}
    graph = CallGraph(
        settings,
        Facts(
            dn_types=dict(facts.get("dn_types") or {}),
            trunk_dids={k: list(v) for k, v in (facts.get("trunk_dids") or {}).items()},
            rules=[Rule(**rule) for rule in facts.get("rules") or []],
            names={str(k): str(v) for k, v in (facts.get("names") or {}).items()},
        ),
    )
    graph.restore([Chain.from_dict(chain) for chain in header.get("chains") or []])
    graph.finished.update({int(callid): float(when) for callid, when in (header.get("finished") or {}).items()})
    return graph


class Replay:
    def __init__(self, trace: Trace, engine: Engine, enricher: Enricher, clock: Clock, collector: Collector) -> None:
        self.trace = trace
        self.engine = engine
        self.enricher = enricher
        self.clock = clock
        self.collector = collector
        self.out: list[Replayed] = []
        self.skipped: list[str] = []  # records that could not be applied, and why
        self.settled_at = 0.0  # virtual time ActiveCalls was last asked about settling calls

    async def run(self) -> Result:
        for line, record in enumerate(self.trace.records, 2):
            await self._until(float(record["t"]))
            try:
                await self._apply(record)
            except (PbxError, ValueError, KeyError, TypeError) as exc:
                self.skipped.append(f"line {line} ({record['kind']}): {exc}")
            if self.engine.graph.unasked:  # a call's last leg just left: the PBX is asked at once
                await self._settle()
            await self._handed_over()
        await self._until(self.clock.now + AFTER)
        return Result(self.out, self.skipped)

    async def _until(self, moment: float) -> None:
        """Runs the engine's decisions every TICK up to `moment`, as its loop does live."""
        graph = self.engine.graph
        while self.clock.now + TICK <= moment and (graph.due(math.inf) or graph.unsettled):
            self.clock.now += TICK
            await self.engine.decide_due()
            if graph.unsettled and self.clock.now - self.settled_at >= SETTLE_EVERY:
                await self._settle()
            await self._handed_over()
        self.clock.now = max(self.clock.now, moment)

    async def _settle(self) -> None:
        self.settled_at = self.clock.now
        await self.engine.settle()

    async def _apply(self, record: Record) -> None:
        kind, engine = record["kind"], self.engine
        if kind == "snapshot" and "body" in record:
            dns, participants = parse_snapshot(record["body"])
            await engine.snapshot(dns, participants)
            return
        match = _PARTICIPANT.match(str(record.get("entity", "")))
        if match is None:
            return
        dn, pid = match.group(1), int(match.group(2))
        if kind == "upsert":
            await engine.upsert(Participant.parse(record["body"], dn))
        elif kind == "remove":
            await engine.remove(dn, pid)

    async def _handed_over(self) -> None:
        """Commits what changed and takes the events the publisher would send now."""
        await self.engine.flush()
        self.out += [Replayed(self.clock.now, event) for event in await self.collector.take(self.enricher)]


async def replay(trace: Trace, settings: Settings | None = None) -> Result:
    """The events the monitor would have handed to the dispatcher for this trace, in order."""
    header = trace.header
    clock = Clock(float(header["t"]))
    xapi = RecordedXapi(trace.records, clock)
    pbx = PbxClient(PbxConfig(url=URL, client_id="replay", client_secret="replay"), InProcess(xapi.handle))
    store = await open_store("sqlite:///:memory:")
    try:
        registry = Registry(store, URL)
        await registry.migrate()
        graph = _graph(header, _settings(header, settings))
        collector = Collector()
        engine = Engine(graph, registry, collector, pbx, clock=clock)
        engine.snapshots = int(header.get("snapshots") or 0)
        enricher = Enricher(pbx, graph.facts, str(header["settings"].get("language") or "en"))
        return await Replay(trace, engine, enricher, clock, collector).run()
    finally:
        await store.close()
        await pbx.aclose()
