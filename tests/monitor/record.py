"""Records what the monitor receives from the simulator for each scenario into data/<scenario>.jsonl.

    python -m tests.monitor.record        # needs nothing running: starts its own simulator

Each line: {"t": seconds since the first line, "op": "snapshot"|"upsert"|"remove"|"end", ...,
"active": [call numbers XAPI ActiveCalls lists right after]}. The unit tests replay these lines
through the call graph (`test_callgraph.py`), so a change of the graph is checked against what a
PBX really sends, without processes or timing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tcxhooks.monitor.config import MonitorSettings
from tcxhooks.monitor.participant import Participant
from tcxhooks.monitor.pbx import xapi
from tcxhooks.monitor.pbx.callcontrol import CallControl
from tcxhooks.monitor.pbx.client import PbxClient
from tcxhooks.platform.config import load_config
from tests.helpers.services import stop

from .conftest import CLIENT_ID, CLIENT_SECRET, start_pbx
from .expected import EXPECTED, PARAMS

DATA = Path(__file__).parent / "data"


class Recorder:
    def __init__(self, pbx: PbxClient) -> None:
        self.pbx = pbx
        self.lines: list[dict[str, Any]] = []
        self.started = time.monotonic()

    async def _add(self, line: dict[str, Any]) -> None:
        line["t"] = round(time.monotonic() - self.started, 3)
        line["active"] = sorted(await xapi.active_call_numbers(self.pbx))
        self.lines.append(line)

    async def snapshot(self, dns: list[dict[str, Any]], participants: list[Participant]) -> None:
        await self._add({"op": "snapshot", "dns": dns, "participants": [p.to_dict() for p in participants]})

    async def upsert(self, participant: Participant) -> None:
        await self._add({"op": "upsert", "participant": participant.to_dict()})

    async def remove(self, dn: str, pid: int) -> None:
        await self._add({"op": "remove", "dn": dn, "id": pid})

    async def dn_changed(self, dn: str) -> None:
        pass


async def record(url: str, scenario: str) -> list[dict[str, Any]]:
    config = load_config(
        None,
        (MonitorSettings,),
        env={"TCXH_PBX_URL": url, "TCXH_PBX_CLIENT_ID": CLIENT_ID, "TCXH_PBX_CLIENT_SECRET": CLIENT_SECRET},
    )
    pbx = PbxClient(config[MonitorSettings].pbx)
    recorder = Recorder(pbx)
    cc = CallControl(pbx, recorder)
    stopping = asyncio.Event()
    task = asyncio.create_task(cc.run(stopping))
    while not cc.connected:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=url) as sim:
        number = (await sim.post("/sim/play", json={"scenario": scenario, "params": PARAMS})).json()["call_number"]
        while not (await sim.get(f"/sim/calls/{number}")).json()["done"]:
            await asyncio.sleep(0.1)
    await recorder._add({"op": "end"})  # the call is over: what ActiveCalls says now
    stopping.set()
    await task
    await pbx.aclose()
    return recorder.lines


def main() -> None:
    wanted = sys.argv[1:] or sorted(EXPECTED)
    with tempfile.TemporaryDirectory() as folder:
        proc, sim = start_pbx(Path(folder))
        try:
            for scenario in wanted:
                lines = asyncio.run(record(sim.url, scenario))
                with open(DATA / f"{scenario}.jsonl", "w", encoding="utf-8") as handle:
                    for line in lines:
                        handle.write(json.dumps(line, separators=(",", ":")) + "\n")
                print(f"{scenario}: {len(lines)} lines")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
