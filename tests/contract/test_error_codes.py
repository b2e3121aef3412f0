"""Each service answers its own errors with the status code its errors.py gives them, and an unexpected
error with INTERNAL (never UNAVAILABLE, which tells a producer to try again): real services over gRPC."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from tcxhooks.v1 import analytics_service_pb2 as apb
from tcxhooks.v1 import (
    analytics_service_pb2_grpc,
    common_pb2,
    dispatcher_service_pb2_grpc,
    media_service_pb2_grpc,
    monitor_service_pb2_grpc,
)
from tcxhooks.v1 import dispatcher_service_pb2 as dpb
from tcxhooks.v1 import media_service_pb2 as mpb
from tcxhooks.v1 import monitor_service_pb2 as opb
from tests.helpers.services import read_config, running, wait_until, write_config

Code = tuple[str, str]
TOKEN = "error-codes-test-token"


def answer(call: Callable[..., Any], request: Any) -> Code:
    try:
        call(request, timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


def test_each_service_answers_with_the_codes_of_its_errors(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        pbx={"url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"},
        webhook={"url": "http://127.0.0.1:9/crm"},
        services={"token": TOKEN},
    )
    addresses = read_config(config)["services"]
    with running(["up", "-c", str(config)], tmp_path / "up.log"):
        channels = {
            name: grpc.insecure_channel(addresses[name])
            for name in addresses
            if name in ("monitor", "dispatcher", "media", "analytics")
        }
        for channel in channels.values():
            grpc.channel_ready_future(channel).result(timeout=90)
        monitor = monitor_service_pb2_grpc.MonitorServiceStub(channels["monitor"])
        dispatcher = dispatcher_service_pb2_grpc.DispatcherServiceStub(channels["dispatcher"])
        media = media_service_pb2_grpc.MediaServiceStub(channels["media"])
        analytics = analytics_service_pb2_grpc.AnalyticsServiceStub(channels["analytics"])

        assert answer(monitor.GetCall, opb.GetCallRequest(chain="nope")) == ("NOT_FOUND", "no live call 'nope'")
        assert answer(monitor.ListRecordings, opb.ListRecordingsRequest())[0] == "INVALID_ARGUMENT"
        assert answer(monitor.MakeCall, opb.MakeCallRequest(extension="101", destination="x"))[0] == "INVALID_ARGUMENT"
        assert answer(dispatcher.SetEndpointState, dpb.SetEndpointStateRequest(name="nope"))[0] == "NOT_FOUND"
        assert answer(dispatcher.ListDeliveries, dpb.ListDeliveriesRequest(limit=-1)) == (
            "INVALID_ARGUMENT",
            "limit must not be negative",
        )
        assert answer(media.GetRecording, mpb.GetRecordingRequest(call_id="nope"))[0] == "NOT_FOUND"
        due = mpb.RecordingsDueRequest(leg=common_pb2.LegRef(call_id="../etc"))
        assert answer(media.RecordingsDue, due)[0] == "INVALID_ARGUMENT"
        assert answer(analytics.Submit, apb.SubmitRequest(call_id="1-1"))[0] == "FAILED_PRECONDITION"
        assert answer(analytics.GetJob, apb.GetJobRequest(call_id="nope"))[0] == "NOT_FOUND"

        # A store whose tables vanished is a bug to look into, not an outage to wait out.
        with sqlite3.connect(tmp_path / "tcxhooks.db") as db:
            for table in ("dispatcher_attempts", "dispatcher_deliveries", "media_files", "media_jobs"):
                db.execute(f"DROP TABLE {table}")
            db.execute("ALTER TABLE analytics_jobs RENAME TO analytics_jobs_away")
        internal = ("INTERNAL", "internal error (OperationalError); the service log has the details")
        assert answer(dispatcher.ListDeliveries, dpb.ListDeliveriesRequest()) == internal
        assert answer(media.GetRecording, mpb.GetRecordingRequest(call_id="nope")) == internal
        assert answer(analytics.GetJob, apb.GetJobRequest(call_id="nope")) == internal
        # The job loops wait the broken store out instead of stopping the service: with the table back,
        # the same service answers again.
        wait_until(
            lambda: "analytics job loop: store error" in (tmp_path / "up.log").read_text(),
            30,
            "the analytics job loop reporting the missing table",
        )
        with sqlite3.connect(tmp_path / "tcxhooks.db") as db:
            db.execute("ALTER TABLE analytics_jobs_away RENAME TO analytics_jobs")
        assert answer(analytics.GetJob, apb.GetJobRequest(call_id="nope"))[0] == "NOT_FOUND"
        for channel in channels.values():
            channel.close()
    log = (tmp_path / "up.log").read_text()
    assert "/tcxhooks.v1.DispatcherService/ListDeliveries failed\nTraceback" in log
    assert "no such table: media_jobs" in log
