"""`tcxhooks capture` with no monitor running: the monitor's own PBX side, run in the capture process.

    async for line in standalone_lines(settings, seconds=600): ...

The same PbxClient, Call Control client, call graph and engine as the monitor, recording through the same
hook, so the trace is what the monitor would receive; the engine runs on an in-memory store and hands its
events to nobody, only so that the trace holds the XAPI reads the monitor makes (ActiveCalls at its
decisions, the reports that complete `call.ended`). 3CX keeps one live token per API client (docs/3cx.md
§1.2): this needs the monitor stopped, or an API client of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tcxhooks.platform.store import open_store

from ..callgraph import CallGraph
from ..config import MonitorSettings
from ..engine import TICK, Engine
from ..enrich import Enricher
from ..facts import Facts
from ..pbx.callcontrol import CallControl
from ..pbx.client import PbxClient
from ..registry import Registry
from ..server import graph_settings, refresh_facts
from .recorder import Recorder
from .replay import Collector
from .session import Capture


async def standalone_lines(settings: MonitorSettings, seconds: float) -> AsyncIterator[str]:
    """Trace lines of the PBX's activity for `seconds` (0: until the caller stops reading)."""
    store = await open_store("sqlite:///:memory:")
    pbx = PbxClient(settings.pbx)
    stopping = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        registry = Registry(store, settings.pbx.url)
        await registry.migrate()
        facts = Facts()
        await refresh_facts(pbx, facts)
        collector = Collector()
        engine = Engine(CallGraph(graph_settings(settings), facts), registry, collector, pbx)
        callcontrol = CallControl(pbx, engine)
        recorder = Recorder()
        pbx.recorder = callcontrol.recorder = recorder
        capture = Capture(recorder, engine, callcontrol, settings.events.language)
        capture.active = True
        enricher = Enricher(pbx, facts, settings.events.language)

        async def hand_over() -> None:
            while not stopping.is_set():
                await collector.take(enricher)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), TICK)

        lines = capture.lines(seconds)
        yield await anext(lines)  # the header: listening from here on, before the PBX is asked anything
        tasks = [asyncio.create_task(job) for job in (callcontrol.run(stopping), engine.run(stopping), hand_over())]
        async for line in lines:
            yield line
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
        await pbx.aclose()
