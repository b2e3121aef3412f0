"""A capture of the running monitor (MonitorService.Capture): a header with what it holds, then every record.

    capture = Capture(recorder, engine, callcontrol, language)
    async for line in capture.lines(seconds=600):   # the header first, then a resync, then what arrives
        ...

The header is taken in the same step as the listener is added (no await in between), so the calls it
holds and the records that follow fit together exactly: a replay restores the calls as the monitor held
them and applies the records on top (replay.py). Only the active monitor (the lease holder) talks to the
PBX; a standby has nothing to record.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from tcxhooks import __version__

from ..engine import Engine
from ..errors import NotActive
from ..pbx.callcontrol import CallControl
from .recorder import Recorder, encode
from .trace import VERSION, Record

POLL = 1.0  # seconds between checks of the capture's end while nothing arrives


class Capture:
    def __init__(self, recorder: Recorder, engine: Engine, callcontrol: CallControl, language: str) -> None:
        self.recorder = recorder
        self.engine = engine
        self.callcontrol = callcontrol
        self.language = language
        self.active = False  # set once this monitor holds the PBX lease

    def header(self) -> Record:
        graph = self.engine.graph
        facts = graph.facts
        return {
            "t": round(self.recorder.clock(), 6),
            "kind": "header",
            "version": VERSION,
            "monitor": __version__,
            "settings": {"graph": dataclasses.asdict(graph.settings), "language": self.language},
            "facts": {
                "dn_types": dict(facts.dn_types),
                "trunk_dids": dict(facts.trunk_dids),
                "rules": [dataclasses.asdict(rule) for rule in facts.rules],
                "names": dict(facts.names),
            },
            "chains": [chain.to_dict() for chain in graph.chains.values()],
            "finished": {str(callid): when for callid, when in graph.finished.items()},
            "snapshots": self.engine.snapshots,
        }

    async def lines(self, seconds: float) -> AsyncIterator[str]:
        """Trace lines for `seconds` (0: until the caller stops reading); CaptureOverrun if the reader falls
        behind, NotActive on a standby."""
        if not self.active:
            raise NotActive("this monitor is a standby (another one holds the PBX lease): capture the active one")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds if seconds > 0 else float("inf")
        with self.recorder.listen() as listener:
            header = encode(self.header())
            self.callcontrol.resync_soon("capture")  # the trace starts from the PBX's full state
            yield header
            while (remaining := deadline - loop.time()) > 0:
                line = await listener.next(min(remaining, POLL))
                if line is not None:
                    yield line
