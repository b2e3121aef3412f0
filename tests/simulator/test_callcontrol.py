"""Call Control REST shapes (docs/3cx.md §2) and WebSocket behaviour (§3)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import aiohttp

from .conftest import Sim
from .watch import watch

PARTICIPANT_KEYS = {
    "id",
    "status",
    "dn",
    "party_caller_name",
    "party_dn",
    "party_caller_id",
    "party_did",
    "device_id",
    "party_dn_type",
    "direct_control",
    "originated_by_dn",
    "originated_by_type",
    "referred_by_dn",
    "referred_by_type",
    "on_behalf_of_dn",
    "on_behalf_of_type",
    "callid",
    "legid",
}


async def test_snapshot_lists_monitored_dns_with_devices_and_participants(sim: Sim) -> None:
    snapshot = await sim.get("/callcontrol")
    types = {item["dn"]: item["type"] for item in snapshot}
    assert types["101"] == "Wextension" and types["800"] == "Wqueue" and types["700"] == "Wivr"
    assert types["crmhooks"] == "Wroutepoint"  # the API client's own route point
    assert "10000" not in types  # the trunk is not a monitored DN
    for item in snapshot:
        assert set(item) == {"dn", "type", "devices", "participants"}
        assert item["participants"] == []
        assert all(set(d) == {"dn", "device_id", "user_agent"} and d["dn"] == item["dn"] for d in item["devices"])
    await sim.get("/callcontrol/10000", status=404)
    await sim.get("/callcontrol/555", status=404)


async def test_participants_during_a_queue_call(sim: Sim) -> None:
    number = await sim.play("queue_answered", ring_seconds=1.0, talk_seconds=0.3)
    for _ in range(500):
        agents = await sim.get("/callcontrol/101/participants")
        if agents:
            break
        await asyncio.sleep(0.02)
    (agent,) = agents
    assert set(agent) == PARTICIPANT_KEYS
    assert (agent["status"], agent["on_behalf_of_dn"], agent["on_behalf_of_type"], agent["callid"]) == (
        "Ringing",
        "800",
        "Wqueue",
        number,
    )
    (queue,) = (await sim.get("/callcontrol/800"))["participants"]
    assert (queue["status"], queue["party_caller_id"], queue["callid"]) == ("Connected", "79161234567", number)
    assert agent["legid"] != queue["legid"] and agent["id"] != queue["id"]
    snapshot = {item["dn"]: item for item in await sim.get("/callcontrol")}
    assert [p["id"] for p in snapshot["101"]["participants"]] == [agent["id"]]
    assert await sim.get(f"/callcontrol/101/participants/{agent['id']}") == agent
    await sim.get("/callcontrol/102/participants/abc", status=404)
    await sim.wait_done(number)
    await sim.get(f"/callcontrol/101/participants/{agent['id']}", status=404)


async def test_devices(sim: Sim) -> None:
    (device,) = await sim.get("/callcontrol/102/devices")
    assert device["dn"] == "102" and device["device_id"].startswith("sip:102@")
    assert await sim.get("/callcontrol/102/devices/" + quote(device["device_id"], safe="")) == device
    await sim.get("/callcontrol/102/devices/" + quote("sip:nobody@x", safe=""), status=404)


async def test_each_connection_has_its_own_gap_free_sequence(sim: Sim) -> None:
    async with sim.ws() as first:
        await sim.play("caller_hangs_up_ringing")
        seen_first = await watch(sim, first, until_removed=1)
        async with sim.ws() as second:
            await sim.play("caller_hangs_up_ringing")
            seen_second = await watch(sim, second, until_removed=1)
            more_first = await watch(sim, first, until_removed=1, start=3)
    assert len(seen_first) == 2 and len(seen_second) == 2 and len(more_first) == 2
    assert seen_second[0][0]["entity"] == more_first[0][0]["entity"]
    assert seen_second[0][1]["callid"] == 699


async def test_pings_are_answered(sim: Sim) -> None:
    async with sim.session.ws_connect(sim.url + "/callcontrol/ws", headers=sim.auth(), autoping=False) as ws:
        await ws.ping(b"hello")
        pong = await asyncio.wait_for(ws.receive(), 5)
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hello")


async def test_requests_over_the_socket(sim: Sim) -> None:
    async with sim.ws() as ws:
        await ws.send_str("not json at all")
        await ws.send_str(json.dumps({"RequestID": "r1", "Path": "/callcontrol/101"}))
        await ws.send_str(
            json.dumps(
                {"RequestID": "r2", "Path": "/callcontrol/101/participants/1/drop", "RequestData": {"reason": "None"}}
            )
        )
        answers = [json.loads((await asyncio.wait_for(ws.receive(), 5)).data) for _ in range(2)]
        await sim.play("caller_hangs_up_ringing")
        seen = await watch(sim, ws, until_removed=1, start=3)
    assert [a["sequence"] for a in answers] == [1, 2]
    first, second = (a["event"] for a in answers)
    assert (first["event_type"], first["entity"]) == (4, "/callcontrol/101")
    assert first["attached_data"]["RequestID"] == "r1" and first["attached_data"]["StatusCode"] == 200
    assert first["attached_data"]["Response"]["dn"] == "101"
    assert (second["attached_data"]["RequestID"], second["attached_data"]["StatusCode"]) == ("r2", 405)
    assert [e["event_type"] for e, _ in seen] == [0, 1]


async def test_drop_cuts_every_socket(sim: Sim) -> None:
    async with sim.ws() as ws:
        async with sim.session.post(sim.url + "/sim/ws/drop") as reply:
            assert (await reply.json())["dropped"] == 1
        message = await asyncio.wait_for(ws.receive(), 5)
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    async with sim.ws() as ws:  # a reconnect works and sees new calls
        await sim.play("caller_hangs_up_ringing")
        assert len(await watch(sim, ws, until_removed=1)) == 2


async def test_injected_frames_reach_every_socket(sim: Sim) -> None:
    async with sim.ws() as ws:
        for body in (
            {"raw": "{not json"},
            {"event_type": 0, "entity": "/callcontrol/101/devices/x"},
            {
                "event_type": 2,
                "entity": "/callcontrol/crmhooks/participants/9",
                "attached_data": {"dtmf_input": "12"},
                "sequence": 77,
            },
        ):
            async with sim.session.post(sim.url + "/sim/ws/inject", json=body) as reply:
                assert (await reply.json())["sockets"] == 1
        frames = [(await asyncio.wait_for(ws.receive(), 5)).data for _ in range(3)]
    assert frames[0] == "{not json"
    assert json.loads(frames[1]) == {
        "sequence": 1,
        "event": {"event_type": 0, "entity": "/callcontrol/101/devices/x", "attached_data": None},
    }
    assert json.loads(frames[2])["sequence"] == 77 and json.loads(frames[2])["event"]["attached_data"] == {
        "dtmf_input": "12"
    }
    async with sim.session.post(sim.url + "/sim/ws/inject", json={"event_type": "x"}) as reply:
        assert reply.status == 400


async def test_scheduled_failures(sim: Sim) -> None:
    async with sim.session.post(
        sim.url + "/sim/fail", json={"prefix": "/callcontrol/1", "status": 503, "count": 2}
    ) as reply:
        assert (await reply.json())["pending"] == 2
    await sim.get("/callcontrol")  # another prefix
    await sim.get("/callcontrol/101", status=503)
    await sim.get("/callcontrol/102/participants", status=503)
    await sim.get("/callcontrol/101")
    async with sim.session.post(sim.url + "/sim/fail", json={"prefix": "/callcontrol/ws", "count": 1}) as reply:
        assert reply.status == 200
    try:
        async with sim.ws():
            raise AssertionError("the upgrade should have failed")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 503
    async with sim.ws():
        pass
    for bad in ({"prefix": "/sim", "count": 1}, {"status": 200}, {"count": -1}):
        async with sim.session.post(sim.url + "/sim/fail", json=bad) as reply:
            assert reply.status == 400


async def test_play_can_cut_the_sockets_after_a_given_change(sim: Sim) -> None:
    async with sim.ws() as ws:
        async with sim.session.post(
            sim.url + "/sim/play",
            json={
                "scenario": "inbound_answered",
                "params": {"ring_seconds": 0.2, "talk_seconds": 0.2},
                "drop_ws_after": [2],
            },
        ) as reply:
            assert reply.status == 200
        first = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        second = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        closed = await asyncio.wait_for(ws.receive(), 5)
    assert [first["sequence"], second["sequence"]] == [1, 2]
    assert closed.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    async with sim.session.post(
        sim.url + "/sim/play", json={"scenario": "inbound_answered", "drop_ws_after": ["x"]}
    ) as reply:
        assert reply.status == 400


async def test_makecall_dials_out_from_the_extension(sim: Sim) -> None:
    async with sim.ws() as ws:
        async with sim.session.post(
            sim.url + "/callcontrol/102/makecall", headers=sim.auth(), json={"destination": "79035556677"}
        ) as reply:
            assert reply.status == 200
            result = await reply.json()
        first = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    assert result["finalstatus"] == "Success"
    participant = result["result"]
    assert (participant["dn"], participant["status"], participant["party_caller_id"], participant["legid"]) == (
        "102",
        "Dialing",
        "79035556677",
        1,
    )
    assert first["event"]["entity"] == f"/callcontrol/102/participants/{participant['id']}"
    for body, status in (({"destination": "x"}, 400), ({}, 400)):
        async with sim.session.post(sim.url + "/callcontrol/102/makecall", headers=sim.auth(), json=body) as reply:
            assert reply.status == status
    async with sim.session.post(
        sim.url + "/callcontrol/800/makecall", headers=sim.auth(), json={"destination": "1"}
    ) as reply:
        assert reply.status == 404
    async with sim.session.post(sim.url + "/callcontrol/102/makecall", json={"destination": "1"}) as reply:
        assert reply.status == 401
