"""Reads the Call Control WebSocket like a monitor does: every Upsert is followed by a GET of its entity."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from .conftest import Sim


async def watch(
    sim: Sim, ws: aiohttp.ClientWebSocketResponse, until_removed: int, timeout: float = 20, start: int = 1
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(event, participant state) pairs until `until_removed` Removes arrived; Remove pairs carry {}.

    Checks the envelope and that `sequence` counts start, start+1, … on this connection.
    """
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []
    removed = 0
    expected_sequence = start

    async def run() -> None:
        nonlocal removed, expected_sequence
        while removed < until_removed:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            assert set(frame) == {"sequence", "event"}
            assert frame["sequence"] == expected_sequence
            expected_sequence += 1
            event = frame["event"]
            assert set(event) == {"event_type", "entity", "attached_data"} and event["attached_data"] is None
            if event["event_type"] == 0:
                async with sim.session.get(sim.url + event["entity"], headers=sim.auth()) as reply:
                    state = await reply.json() if reply.status == 200 else {"gone": True}
                seen.append((event, state))
            else:
                assert event["event_type"] == 1
                removed += 1
                seen.append((event, {}))

    await asyncio.wait_for(run(), timeout)
    return seen
