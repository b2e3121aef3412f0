"""Every scenario, played at once on one simulator: the changes seen over WS + GET are exactly the script's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from tcxhooks.simulator import describe, scenarios
from tcxhooks.simulator.state import TRUNK_DN
from tcxhooks.simulator.steps import Remove, Upsert

from .conftest import FAST, Sim

RECORDINGS = {
    "inbound_answered": 1,
    "queue_answered": 1,
    "queue_abandoned_callback": 0,
    "queue_abandoned": 0,
    "blind_transfer": 2,
    "attended_transfer": 2,
    "outbound_answered": 1,
    "outbound_unanswered": 0,
    "ring_group": 1,
    "ivr_to_queue": 1,
    "queue_overflow": 1,
    "agent_rejects": 1,
    "caller_hangs_up_ringing": 0,
    "transfer_to_external": 1,
    "transfer_to_queue": 2,
    "two_transfers": 3,
    "mobile_reconnect": 3,
    "parallel_calls": 2,
    "internal_call": 0,
}
SLOW_GAP = {**FAST, "gap": 0.1}


def expected(name: str, params: dict[str, Any]) -> list[tuple[str, str, str]]:
    """("U", dn, status after) / ("R", dn, "") for every change on a monitored DN, in script order."""
    out: list[tuple[str, str, str]] = []
    status: dict[str, str] = {}
    dns: dict[str, str] = {}
    for step in scenarios.build(name, params).steps:
        if isinstance(step, Upsert) and step.dn != TRUNK_DN:
            status[step.leg] = step.fields.get("status", status.get(step.leg, ""))
            dns[step.leg] = step.dn
            out.append(("U", step.dn, status[step.leg]))
        elif isinstance(step, Remove) and step.leg in dns:
            out.append(("R", dns.pop(step.leg), ""))
    return out


def _check_states(mine: list[tuple[str, str, dict[str, Any]]], want: list[tuple[str, str, str]], name: str) -> None:
    """Each GET shows the state the script set at that Upsert, or (if the client was slower than the next
    change) a later state of the same participant, or 404 when it was removed meanwhile."""
    for i, ((kind, entity, state), (_, _, status)) in enumerate(zip(mine, want, strict=False)):
        if kind != "U":
            continue
        later = [w[2] for (k, e, _), w in zip(mine[i:], want[i:], strict=False) if e == entity and k == "U"]
        if state.get("gone"):
            assert any(k == "R" and e == entity for k, e, _ in mine[i:]), (name, entity)
        else:
            assert state["status"] == status or state["status"] in later, (name, entity, state["status"], status)


async def _collect(
    sim: Sim, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event, into: list[tuple[str, str, dict[str, Any]]]
) -> None:
    """("U"|"R", entity, fetched state) until `stop` is set and the socket has been quiet for a moment."""
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), 0.5)
        except TimeoutError:
            if stop.is_set():
                return
            continue
        event = json.loads(message.data)["event"]
        if event["event_type"] == 0:
            async with sim.session.get(sim.url + event["entity"], headers=sim.auth()) as reply:
                state = await reply.json() if reply.status == 200 else {"gone": reply.status == 404}
            into.append(("U", event["entity"], state))
        else:
            into.append(("R", event["entity"], {}))


async def test_all_scenarios_follow_their_scripts(sim: Sim) -> None:
    names = [n for n in scenarios.names() if n != "random"]
    seen: list[tuple[str, str, dict[str, Any]]] = []
    stop = asyncio.Event()
    async with sim.ws() as ws:
        reader = asyncio.create_task(_collect(sim, ws, stop, seen))
        numbers = {name: await sim.play(name, **SLOW_GAP) for name in names}
        rows = {name: await sim.wait_done(number, timeout=40) for name, number in numbers.items()}
        stop.set()
        await reader
    # A participant belongs to the scenario whose player made it. Its own GET cannot tell: a short-lived
    # leg may be gone (404) before a slow client fetches it.
    owner = {change["entity"]: name for name, row in rows.items() for change in row["changes"]}
    assert {entity for _, entity, _ in seen} <= owner.keys()
    for name in names:
        assert rows[name]["error"] == "", name
        mine = [(kind, entity, state) for kind, entity, state in seen if owner[entity] == name]
        want = expected(name, SLOW_GAP)
        assert [(kind, entity.split("/")[2]) for kind, entity, _ in mine] == [(k, dn) for k, dn, _ in want], name
        _check_states(mine, want, name)
        assert len(rows[name]["recordings"]) == RECORDINGS[name], name
    by_entity: dict[str, list[str]] = {}
    for kind, entity, _ in seen:
        by_entity.setdefault(entity, []).append(kind)
    assert all(kinds.count("R") == 1 and kinds[-1] == "R" for kinds in by_entity.values())


async def test_attended_transfer_moves_the_target_into_the_callers_call(sim: Sim) -> None:
    async with sim.ws() as ws:
        number = await sim.play("attended_transfer", **SLOW_GAP)
        seen: list[tuple[str, str, dict[str, Any]]] = []
        stop = asyncio.Event()
        reader = asyncio.create_task(_collect(sim, ws, stop, seen))
        row = await sim.wait_done(number)
        stop.set()
        await reader
    consult = row["call_numbers"][1]
    target = [state for kind, entity, state in seen if kind == "U" and entity.startswith("/callcontrol/102/")]
    assert [(s["status"], s["callid"]) for s in target] == [
        ("Ringing", consult),
        ("Connected", consult),
        ("Connected", number),
    ]
    assert len({s["id"] for s in target}) == 1
    moved = target[-1]
    assert (moved["party_dn_type"], moved["party_caller_id"], moved["referred_by_dn"], moved["referred_by_type"]) == (
        "Wexternalline",
        "79161234567",
        "101",
        "Wextension",
    )
    assert moved["legid"] != target[0]["legid"]


async def test_callback_shows_in_the_queue_callbacks_report(sim: Sim) -> None:
    report = "/xapi/v1/ReportQueueCallbacks/Pbx.GetQueueCallbacksData(queueDnStr='800',startDt={},endDt={})"
    window = ("2020-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
    before = (await sim.get(report.format(*window)))["value"]
    assert [(r["QueueDnNumber"], r["CallbacksCount"]) for r in before] == [("800", 0)]
    await sim.wait_done(await sim.play("queue_abandoned_callback"))
    await sim.wait_done(await sim.play("queue_abandoned"))
    after = (await sim.get(report.format(*window)))["value"]
    assert [(r["QueueDnNumber"], r["Dn"], r["ReceivedCount"], r["CallbacksCount"]) for r in after] == [
        ("800", "Sales", 2, 1)
    ]
    await sim.get(report.format("yesterday", window[1]), status=400)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_random_scripts_are_well_formed(seed: int) -> None:
    script = scenarios.build("random", {"seed": seed})
    assert script == scenarios.build("random", {"seed": seed})
    open_legs: set[str] = set()
    ended: list[str] = []
    for step in script.steps:
        if isinstance(step, Upsert):
            assert step.leg not in ended
            open_legs.add(step.leg)
        elif isinstance(step, Remove):
            assert step.leg in open_legs
            open_legs.discard(step.leg)
            ended.append(step.leg)
    assert not open_legs and len(ended) == len(set(ended))


async def test_random_scenarios_play_cleanly(sim: Sim) -> None:
    numbers = [await sim.play("random", seed=seed, ring_seconds=0.1, talk_seconds=0.1) for seed in range(12)]
    for number in numbers:
        assert (await sim.wait_done(number))["error"] == ""
    assert await sim.get("/xapi/v1/ActiveCalls") == {
        "@odata.context": sim.url + "/xapi/v1/$metadata#ActiveCalls",
        "value": [],
    }
    assert all(item["participants"] == [] for item in await sim.get("/callcontrol"))


def test_scenarios_md_matches_the_code() -> None:
    text = (Path(describe.__file__).parent / "SCENARIOS.md").read_text(encoding="utf-8")
    for name in scenarios.names():
        if name != "random":
            block = "```\n" + "\n".join(describe.sequence(scenarios.build(name))) + "\n```"
            assert f"### {name}\n" in text and block in text, f"SCENARIOS.md is out of date for {name}"
