"""The `/sim/` control API: malformed requests, scenario list, load."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tcxhooks.simulator import scenarios

from .conftest import Sim


@pytest.mark.parametrize(
    "body,message",
    [
        ({"scenario": "nope"}, "unknown scenario"),
        ({}, "'scenario'"),
        ({"scenario": 5}, "'scenario'"),
        ({"scenario": "inbound_answered", "params": []}, "'params'"),
        ({"scenario": "inbound_answered", "params": {"ring_seconds": "soon"}}, "ring_seconds"),
        ({"scenario": "inbound_answered", "params": {"ring_seconds": -1}}, "negative"),
        ({"scenario": "inbound_answered", "params": {"bogus": 1}}, "bogus"),
        ({"scenario": "inbound_answered", "params": {"callback": "yes"}}, "callback"),
        ({"scenario": "inbound_answered", "params": {"ext": "555"}}, "555"),
        ({"scenario": "parallel_calls", "params": {"calls": 0}}, "calls"),
        ({"scenario": "inbound_answered", "record": "yes"}, "record"),
    ],
)
async def test_bad_play_requests_are_400(sim: Sim, body: dict[str, Any], message: str) -> None:
    async with sim.session.post(sim.url + "/sim/play", json=body) as reply:
        assert reply.status == 400
        assert message in (await reply.json())["error"]
    assert sim.state.pbx.calls == {}


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,2]", b"\xff\xfe"])
async def test_non_json_bodies_are_400(sim: Sim, raw: bytes) -> None:
    for path in ("/sim/play", "/sim/load"):
        async with sim.session.post(sim.url + path, data=raw, headers={"Content-Type": "application/json"}) as reply:
            assert reply.status == 400


async def test_scenario_list(sim: Sim) -> None:
    async with sim.session.get(sim.url + "/sim/scenarios") as reply:
        body = await reply.json()
    assert body["scenarios"] == scenarios.names() and body["params"]["ring_seconds"] == 3.0


async def test_numbers_start_at_the_configured_value_and_increase(sim: Sim) -> None:
    first = await sim.play("caller_hangs_up_ringing")
    second = await sim.play("caller_hangs_up_ringing")
    assert (first, second) == (698, 699)
    async with sim.session.get(sim.url + "/sim/calls") as reply:
        body = await reply.json()
    assert [c["call_number"] for c in body["calls"]] == [698, 699]
    async with sim.session.get(sim.url + "/sim/calls/12345") as reply:
        assert reply.status == 404
    row = await sim.wait_done(first)
    assert [(c["kind"], c["status"], c["callid"]) for c in row["changes"]] == [("U", "Ringing", 698), ("R", "", 698)]
    assert row["changes"][0]["entity"] == row["changes"][1]["entity"]
    assert row["changes"][0]["time"] <= row["changes"][1]["time"]


async def test_load_runs_many_concurrent_calls(sim: Sim) -> None:
    body = {"calls": 60, "rate": 200, "params": {"talk_seconds": 1.5, "ring_seconds": 0.1}}
    async with sim.session.post(sim.url + "/sim/load", json=body) as reply:
        assert reply.status == 200, await reply.text()
    peak = 0
    for _ in range(400):
        peak = max(peak, len(sim.state.pbx.live_calls()))
        async with sim.session.get(sim.url + "/sim/load") as reply:
            (load,) = (await reply.json())["loads"]
        if load["finished_starting"] and load["done"] == 60:
            break
        await asyncio.sleep(0.02)
    assert load["done"] == 60 and peak > 30
    assert all(item["participants"] == [] for item in await sim.get("/callcontrol"))
    async with sim.session.post(sim.url + "/sim/load", json={"calls": 0}) as reply:
        assert reply.status == 400


async def test_old_finished_calls_are_forgotten(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    from tcxhooks.simulator import player

    monkeypatch.setattr(player, "MAX_CALL_RECORDS", 3)
    numbers = []
    for _ in range(5):
        numbers.append(await sim.play("outbound_unanswered", ring_seconds=0.01, record=False))
        await sim.wait_done(numbers[-1])
    async with sim.session.get(sim.url + "/sim/calls") as reply:
        kept = [c["call_number"] for c in (await reply.json())["calls"]]
    assert kept == numbers[-3:]
