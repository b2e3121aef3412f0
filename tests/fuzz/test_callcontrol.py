"""Fuzz: Call Control WebSocket frames and participant JSON, through the monitor's real reader and engine.

Frames of every kind (garbage text, binary, JSON of any shape, nesting deeper than a parser's stack,
events with hostile entities, types and attached participants) go through `CallControl`'s reader and
applier into the real engine (call graph, SQLite registry); every participant fetched answers hostile
JSON. Whatever comes: the reader ends only when the socket does, no change fails (a failure would close
the socket: a reconnect loop), every frame that is not an event is counted, and every event the graph
emits renders as a webhook in both formats.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tcxhooks.dispatcher.payloads import render
from tcxhooks.monitor.callgraph import CallGraph, Settings
from tcxhooks.monitor.engine import Engine
from tcxhooks.monitor.errors import PbxHttpError
from tcxhooks.monitor.facts import Facts
from tcxhooks.monitor.metrics import MALFORMED
from tcxhooks.monitor.pbx.callcontrol import CallControl
from tcxhooks.monitor.registry import OutRow, Registry
from tcxhooks.platform.store import open_store

from .profile import deeply_nested, fuzz, json_values, run_bounded, text, with_fields

DNS = ["101", "102", "800", "10000"]
dns = st.sampled_from(DNS) | text
PARTICIPANT = {
    "id": st.integers(1, 6),
    "dn": dns,
    "callid": st.integers(1, 4),
    "legid": st.integers(0, 4),
    "status": st.sampled_from(["Ringing", "Dialing", "Connected", "Held", ""]),
    "party_dn": dns,
    "party_dn_type": st.sampled_from(["Wexternalline", "Wextension", "Wqueue", "Wroutepoint", "None"]),
    "party_caller_id": st.sampled_from(["+79161234567", "101", ""]) | text,
    "party_caller_name": text,
    "party_did": st.sampled_from(["74951234567", ""]) | text,
    "originated_by_dn": dns,
    "referred_by_dn": dns,
    "on_behalf_of_dn": dns,
}
participants = with_fields(PARTICIPANT)
entities = (
    st.builds("/callcontrol/{}/participants/{}".format, st.sampled_from(DNS), st.integers(1, 6))
    | st.sampled_from(["/callcontrol/101", "/callcontrol/101/devices/x", "/callcontrol//participants/1"])
    | text
)
events = st.builds(
    lambda entity, kind, attached, sequence: json.dumps(
        {"sequence": sequence, "event": {"event_type": kind, "entity": entity, "attached_data": attached}}
    ),
    entities,
    st.sampled_from([0, 1, 2, 3, 4]) | json_values,
    participants | json_values,
    st.integers(0, 40) | json_values,
)
not_events = (
    text | st.binary(max_size=200) | st.builds(json.dumps, json_values) | st.integers(1000, 5000).map(deeply_nested)
)
frames = st.lists(st.tuples(st.just(True), events) | st.tuples(st.just(False), not_events), max_size=15)
fetched = st.lists(
    participants.map(lambda p: ("json", p)) | json_values.map(lambda v: ("json", v)) | st.just(("gone", None)),
    min_size=1,
    max_size=8,
)


class Socket:
    """A Call Control WebSocket whose frames are given; ends like a closed connection."""

    def __init__(self, frames: list[str | bytes]) -> None:
        self.frames = list(frames)
        self.closed = False

    async def recv(self) -> str | bytes:
        if not self.frames:
            raise ConnectionClosed(None, None)
        return self.frames.pop(0)

    async def close(self) -> None:
        self.closed = True


class Pbx:
    """Answers the snapshot with participants, and each participant GET with the next hostile answer."""

    def __init__(self, answers: list[tuple[str, Any]], snapshot: list[Any]) -> None:
        self.answers = itertools.cycle(answers)
        self.snapshot = snapshot

    async def get_json(self, path: str, params: Any = None) -> Any:
        if path == "/callcontrol":
            return self.snapshot
        kind, value = next(self.answers)
        if kind == "gone":
            raise PbxHttpError(404, f"GET {path}: 404")
        return value


class Collector:
    def __init__(self) -> None:
        self.rows: list[OutRow] = []

    def add(self, rows: list[OutRow]) -> None:
        self.rows.extend(rows)


def malformed() -> float:
    return sum(
        sample.value for metric in MALFORMED.collect() for sample in metric.samples if sample.name.endswith("_total")
    )


async def session(
    frames: list[tuple[bool, str | bytes]], answers: list[tuple[str, Any]], snapshot: list[Any], folder: Path
) -> tuple[Socket, list[OutRow], float]:
    store = await open_store(f"sqlite:///{folder / 'monitor.db'}")
    try:
        registry = Registry(store, "https://pbx.example.com")
        await registry.migrate()
        clock = [1_800_000_000.0]
        graph = CallGraph(Settings(grace=1.0, ringing_stopped=True, timezone="UTC"), Facts())
        published = Collector()
        engine = Engine(graph, registry, published, None, clock=lambda: clock[0])
        socket = Socket([frame for _, frame in frames])
        control = CallControl(Pbx(answers, snapshot), engine)  # type: ignore[arg-type]
        ordered: asyncio.Queue[Any] = asyncio.Queue(64)
        counted = malformed()
        applier = asyncio.create_task(control._apply(ordered, socket))
        await ordered.put(control._resync)
        try:
            await control._read(socket, ordered, asyncio.Event())
            raise AssertionError("the reader ended while the socket was open")
        except ConnectionClosed:
            pass
        await ordered.put(None)
        await applier
        clock[0] += 3600  # every call the frames left open is decided
        await engine.decide_due()
        await engine.flush()
        return socket, published.rows, malformed() - counted
    finally:
        await store.close()


@fuzz(examples=40, deadline_ms=None)
@given(
    frames,
    fetched,
    st.lists(
        st.fixed_dictionaries({"dn": st.sampled_from(DNS), "participants": st.lists(participants, max_size=2)})
        | json_values,
        max_size=3,
    ),
)
def test_hostile_frames_and_participants_never_break_the_session(
    frames: list[tuple[bool, str | bytes]], answers: list[tuple[str, Any]], snapshot: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        socket, rows, counted = run_bounded(lambda: session(frames, answers, snapshot, Path(folder)))
    assert not socket.closed, "a change failed: the session would reconnect (and meet the same input again)"
    assert counted >= sum(not is_event for is_event, _ in frames), "a frame that is no event went uncounted"
    for row in rows:
        if row.target == "dispatcher" and row.message is not None:
            for fmt in ("form", "json"):
                assert render(row.message, fmt)
