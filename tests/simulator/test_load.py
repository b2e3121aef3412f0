"""The monitor bench's load: 1,000 concurrent calls at 100 starts/s, watched over one WebSocket (slow)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tcxhooks.simulator.server import SimConfig, SimState, create_app


@pytest.mark.slow
async def test_thousand_concurrent_calls(tmp_path: Path) -> None:
    state = SimState(SimConfig(client_secret="s", recordings_dir=tmp_path, extra_extensions=1000))
    server = TestServer(create_app(state), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    counts = {"upsert": 0, "remove": 0}
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                url + "/connect/token",
                data={"grant_type": "client_credentials", "client_id": "crmhooks", "client_secret": "s"},
            ) as reply:
                token = (await reply.json())["access_token"]
            async with session.ws_connect(url + "/callcontrol/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
                async with session.post(
                    url + "/sim/load",
                    json={"calls": 1000, "rate": 100, "params": {"talk_seconds": 12, "ring_seconds": 1}},
                ) as reply:
                    assert reply.status == 200
                peak = 0
                while counts["remove"] < 1000:
                    message = await asyncio.wait_for(ws.receive(), 30)
                    event = json.loads(message.data)["event"]
                    counts["upsert" if event["event_type"] == 0 else "remove"] += 1
                    peak = max(peak, len(state.pbx.live_calls()))
    finally:
        await server.close()
    assert counts == {"upsert": 2000, "remove": 1000}
    assert peak == 1000
