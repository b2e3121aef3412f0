"""Click-to-call's PBX side: the monitor's MakeCall RPC places the call through the simulator's Call Control
makecall, and the call that follows is a real simulated outbound call with its webhooks."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import grpc
import httpx
import pytest

from tcxhooks.v1 import monitor_service_pb2 as pb
from tcxhooks.v1 import monitor_service_pb2_grpc
from tests.helpers.services import stop

from .conftest import CLIENT_ID, CLIENT_SECRET, Monitor, start_pbx


def test_makecall_from_an_extension_becomes_an_outbound_call(monitor_stack: Monitor) -> None:
    httpx.post(
        f"{monitor_stack.pbx.url}/sim/makecall",
        json={"scenario": "outbound_answered", "params": {"ring_seconds": 0.5, "talk_seconds": 1}},
    ).raise_for_status()
    api = monitor_service_pb2_grpc.MonitorServiceStub(grpc.insecure_channel(monitor_stack.address("monitor")))
    placed = api.MakeCall(pb.MakeCallRequest(extension="102", destination="+79031112233"), timeout=20)
    assert placed.pbx_call_number > 0 and placed.participant_id > 0
    assert placed.device_id.startswith("sip:102@")  # the extension's registered device dialled
    assert placed.chain.endswith(f"_{placed.pbx_call_number}")
    bodies = monitor_stack.bodies(2)
    assert [dict(b)["event"] for b in bodies] == ["hangupoutgoing", "outgoing"]
    assert dict(bodies[0])["user"] == "102" and dict(bodies[0])["id"] == f"{placed.chain}-1"
    assert dict(bodies[1])["callerid"] == "+79031112233"


def test_makecall_refusals_carry_their_reason(monitor_stack: Monitor) -> None:
    api = monitor_service_pb2_grpc.MonitorServiceStub(grpc.insecure_channel(monitor_stack.address("monitor")))
    for request, code in (
        (pb.MakeCallRequest(extension="102", destination="not a number"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.MakeCallRequest(extension="800", destination="79031112233"), grpc.StatusCode.NOT_FOUND),
        (pb.MakeCallRequest(extension="", destination="79031112233"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as info:
            api.MakeCall(request, timeout=20)
        assert info.value.code() == code


def test_the_simulator_answers_makecall_like_3cx_for_a_device(tmp_path: Path) -> None:
    proc, pbx = start_pbx(tmp_path)
    try:
        token = httpx.post(
            f"{pbx.url}/connect/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        ).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        device = httpx.get(f"{pbx.url}/callcontrol/103/devices", headers=auth).json()[0]["device_id"]
        url = f"{pbx.url}/callcontrol/103/devices/{quote(device, safe='')}/makecall"
        answer = httpx.post(url, json={"destination": "79035556677"}, headers=auth)
        body = answer.json()
        assert answer.status_code == 200 and body["finalstatus"] == "Success" and body["reason"] == "None"
        assert (body["result"]["dn"], body["result"]["status"]) == ("103", "Dialing")
        wrong = httpx.post(
            f"{pbx.url}/callcontrol/103/devices/{quote('sip:999@x', safe='')}/makecall",
            json={"destination": "1"},
            headers=auth,
        )
        assert wrong.status_code == 404
        bad = httpx.post(url, json={"destination": "abc"}, headers=auth)
        assert bad.status_code == 400 and bad.json()["finalstatus"] == "Failed"
        assert httpx.post(f"{pbx.url}/sim/makecall", json={"scenario": "inbound_answered"}).status_code == 400
    finally:
        stop(proc)
