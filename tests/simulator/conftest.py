"""Fixtures: an in-process simulator (real HTTP on a loopback port) and a client holding a live token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tcxhooks.simulator.server import SimConfig, SimState, create_app

CLIENT_ID = "crmhooks"
SECRET = "test-secret"
FAST = {"ring_seconds": 0.2, "talk_seconds": 0.4, "wait_seconds": 0.3, "gap": 0.02}


class Sim:
    """A running simulator plus an HTTP session; `token()` mints, `get()` calls the API with the live token."""

    def __init__(self, server: TestServer, state: SimState, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.state = state
        self.session = session
        self.url = str(server.make_url("")).rstrip("/")
        self.bearer = ""

    async def token(self) -> str:
        async with self.session.post(
            self.url + "/connect/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET},
        ) as reply:
            assert reply.status == 200, await reply.text()
            self.bearer = (await reply.json())["access_token"]
        return self.bearer

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"}

    async def get(self, path: str, status: int = 200, **params: Any) -> Any:
        async with self.session.get(self.url + path, headers=self.auth(), params=params or None) as reply:
            body = await reply.read()
            assert reply.status == status, (path, reply.status, body[:300])
            return json.loads(body) if body and reply.content_type == "application/json" else body

    async def play(self, scenario: str, record: bool = True, **params: Any) -> int:
        async with self.session.post(
            self.url + "/sim/play", json={"scenario": scenario, "params": {**FAST, **params}, "record": record}
        ) as reply:
            assert reply.status == 200, await reply.text()
            return int((await reply.json())["call_number"])

    async def wait_done(self, call_number: int, timeout: float = 20) -> dict[str, Any]:
        async def poll() -> dict[str, Any]:
            while True:
                async with self.session.get(f"{self.url}/sim/calls/{call_number}") as reply:
                    row = await reply.json()
                if row["done"]:
                    return row
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), timeout)

    def ws(self) -> Any:
        return self.session.ws_connect(self.url + "/callcontrol/ws", headers=self.auth())


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Sim]:
    state = SimState(
        SimConfig(client_id=CLIENT_ID, client_secret=SECRET, recordings_dir=tmp_path / "rec", recording_delay=0.05)
    )
    server = TestServer(create_app(state), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        sim = Sim(server, state, session)
        await sim.token()
        yield sim
    await server.close()
