"""Each service answers its own errors with the status code its errors.py gives them, and an unexpected
error with INTERNAL (never UNAVAILABLE, which tells a producer to try again): real services over gRPC."""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, Callable

import grpc

from tcxhooks.analytics.config import AnalyticsConfig
from tcxhooks.analytics.jobstore import JobStore
from tcxhooks.analytics.servicer import AnalyticsServicer
from tcxhooks.platform.grpc import create_server
from tcxhooks.platform.jobqueue import process_owner, replica_name
from tcxhooks.platform.settings import ServicesConfig
from tcxhooks.platform.store import open_store
from tcxhooks.v1 import analytics_service_pb2 as apb
from tcxhooks.v1 import common_pb2
from tcxhooks.v1 import analytics_service_pb2_grpc
from tcxhooks.v1 import dispatcher_service_pb2 as dpb
from tcxhooks.v1 import dispatcher_service_pb2_grpc
from tcxhooks.v1 import media_service_pb2 as mpb
from tcxhooks.v1 import media_service_pb2_grpc
from tcxhooks.v1 import monitor_service_pb2 as opb
from tcxhooks.v1 import monitor_service_pb2_grpc
from tests.helpers.services import read_config, running, write_config

Code = tuple[str, str]
TOKEN = "error-codes-test-token"


def answer(call: Callable[..., Any], request: Any) -> Code:
    try:
        call(request, timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


def test_each_service_answers_with_the_codes_of_its_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path, pbx={"url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"},
                          webhook={"url": "http://127.0.0.1:9/crm"}, services={"token": TOKEN})
    addresses = read_config(config)["services"]
    with running(["up", "-c", str(config)], tmp_path / "up.log"):
        channels = {name: grpc.insecure_channel(addresses[name]) for name in addresses if name in
                    ("monitor", "dispatcher", "media", "analytics")}
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
            "INVALID_ARGUMENT", "limit must not be negative")
        assert answer(media.GetRecording, mpb.GetRecordingRequest(call_id="nope"))[0] == "NOT_FOUND"
        due = mpb.RecordingsDueRequest(leg=common_pb2.LegRef(call_id="../etc"))
        assert answer(media.RecordingsDue, due)[0] == "INVALID_ARGUMENT"
        assert answer(analytics.Submit, apb.SubmitRequest(call_id="1-1"))[0] == "FAILED_PRECONDITION"
        assert answer(analytics.GetJob, apb.GetJobRequest(call_id="nope"))[0] == "NOT_FOUND"

        # A store whose tables vanished is a bug to look into, not an outage to wait out.
        with sqlite3.connect(tmp_path / "tcxhooks.db") as db:
            for table in ("dispatcher_attempts", "dispatcher_deliveries", "media_files", "media_jobs"):
                db.execute(f"DROP TABLE {table}")
        internal = ("INTERNAL", "internal error (OperationalError); the service log has the details")
        assert answer(dispatcher.ListDeliveries, dpb.ListDeliveriesRequest()) == internal
        assert answer(media.GetRecording, mpb.GetRecordingRequest(call_id="nope")) == internal
        for channel in channels.values():
            channel.close()
    log = (tmp_path / "up.log").read_text()
    assert "/tcxhooks.v1.DispatcherService/ListDeliveries failed\nTraceback" in log
    assert "no such table: media_jobs" in log


async def test_analytics_answers_internal_for_an_unexpected_error(tmp_path: Path) -> None:
    """In-process (the service's job loop would stop on the broken store before a call could arrive)."""
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    jobs = JobStore(store, process_owner(replica_name("127.0.0.1:0")))
    await jobs.migrate()
    server, port = create_server(ServicesConfig(), "127.0.0.1:0")
    servicer = AnalyticsServicer(AnalyticsConfig(enabled=True), jobs, "offline", asyncio.Event())
    analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server(servicer, server)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
            await store.execute("DROP TABLE analytics_jobs")
            try:
                await stub.GetJob(apb.GetJobRequest(call_id="1-1"), timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert (exc.code(), exc.details()) == (
                    grpc.StatusCode.INTERNAL, "internal error (OperationalError); the service log has the details")
            else:
                raise AssertionError("GetJob answered without its table")
    finally:
        await server.stop(None)
        await store.close()
