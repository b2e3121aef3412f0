"""MonitorService over gRPC against the simulator: calls, extensions, recordings and their audio, PBX check."""

from __future__ import annotations

import time

import grpc
import pytest

from tcxhooks.v1 import common_pb2, monitor_service_pb2, monitor_service_pb2_grpc

from .conftest import Monitor


def stub(monitor: Monitor) -> monitor_service_pb2_grpc.MonitorServiceStub:
    return monitor_service_pb2_grpc.MonitorServiceStub(grpc.insecure_channel(monitor.address("monitor")))


def test_calls_recordings_audio_extensions_and_check(monitor_stack: Monitor) -> None:
    api = stub(monitor_stack)
    number = monitor_stack.pbx.play("mobile_reconnect", ring_seconds=0.5, talk_seconds=3)["call_number"]
    monitor_stack.bodies(2)  # answered: the call is live
    calls = api.ListCalls(monitor_service_pb2.ListCallsRequest(), timeout=5).calls
    assert [(c.pbx_call_number, c.link, c.caller_id, c.did) for c in calls] == [
        (number, 1, "79161234567", "74951234567")
    ]
    assert [(leg.dn, leg.status) for leg in calls[0].legs] == [("101", "Connected")]
    call = api.GetCall(monitor_service_pb2.GetCallRequest(chain=calls[0].legs[0].call_id), timeout=5).call
    assert call.chain == calls[0].chain and call.direction == common_pb2.DIRECTION_INCOMING
    with pytest.raises(grpc.RpcError) as info:
        api.GetCall(monitor_service_pb2.GetCallRequest(chain="260101000000_1"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    monitor_stack.pbx.wait_done(number)
    monitor_stack.bodies(3)
    recordings = monitor_stack.pbx.call(number)["recordings"]
    assert len(recordings) == 3  # the mobile app reconnected twice: three files for one leg
    leg = common_pb2.LegRef(
        call_id=calls[0].legs[0].call_id,
        dn="101",
        pbx_call_number=number,
        start_unix_ms=int((time.time() - 60) * 1000),
        end_unix_ms=int(time.time() * 1000),
    )
    rows = api.ListRecordings(monitor_service_pb2.ListRecordingsRequest(leg=leg), timeout=10).recordings
    assert [r.recording_id for r in rows] == recordings and all(r.file_name.startswith("101/") for r in rows)
    pid = int(monitor_stack.pbx.call(number)["changes"][0]["entity"].rsplit("/", 1)[1])
    leg.participant_ids[:] = [pid]
    assert [
        r.recording_id
        for r in api.ListRecordings(monitor_service_pb2.ListRecordingsRequest(leg=leg), timeout=10).recordings
    ] == recordings
    leg.participant_ids[:] = [pid + 1000]  # another call's leg on the same DN at the same time: not ours
    assert list(api.ListRecordings(monitor_service_pb2.ListRecordingsRequest(leg=leg), timeout=10).recordings) == []
    audio = b"".join(
        c.chunk
        for c in api.FetchRecording(
            monitor_service_pb2.FetchRecordingRequest(recording_id=rows[0].recording_id), timeout=10
        )
    )
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" and len(audio) > 8000
    with pytest.raises(grpc.RpcError) as info:
        list(api.FetchRecording(monitor_service_pb2.FetchRecordingRequest(recording_id=99999), timeout=10))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        api.ListRecordings(monitor_service_pb2.ListRecordingsRequest(leg=common_pb2.LegRef()), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    extensions = api.ListExtensions(monitor_service_pb2.ListExtensionsRequest(), timeout=5).extensions
    assert [e.number for e in extensions] == ["101", "102", "103", "104", "105"]
    items = api.CheckPbx(monitor_service_pb2.CheckPbxRequest(), timeout=10).items
    assert [(i.name, i.ok) for i in items] == [
        ("token", True),
        ("callcontrol", True),
        ("xapi", True),
        ("calllog", True),
        ("websocket", True),
        ("reconcile", True),
    ], items
