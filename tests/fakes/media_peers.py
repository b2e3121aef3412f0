"""Media's peers in its tests: a small real MonitorService serving wav files and an AnalyticsService
(gRPC servers in threads, checking the shared service token, which proves media sends it), plus
the real dispatcher process delivering to a fake CRM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    dispatcher_service_pb2,
    dispatcher_service_pb2_grpc,
    monitor_service_pb2,
    monitor_service_pb2_grpc,
)
from tests.fakes.receiver import Receiver, Request
from tests.helpers.services import read_config, start, stop, wait_healthy, write_config

TOKEN = "media-test-service-token"


def _authorised(context: grpc.ServicerContext) -> None:
    metadata = dict(context.invocation_metadata())
    if metadata.get("authorization") != f"Bearer {TOKEN}":
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing service token")


@dataclass
class FakeRecording:
    recording_id: int
    path: Path
    start: float
    visible_at: float = 0.0
    end: float = 0.0


class FakeMonitor(monitor_service_pb2_grpc.MonitorServiceServicer):
    def __init__(self) -> None:
        self.recordings: dict[str, list[FakeRecording]] = {}
        self.chunk_delay = 0.0  # seconds between streamed chunks (to make a transfer slow)
        self.fetches: list[int] = []
        self._ids = iter(range(1000, 10**6))

    def add(self, call_id: str, path: Path, start: float, visible_at: float = 0.0, end: float = 0.0) -> int:
        rec = FakeRecording(next(self._ids), path, start, visible_at, end)
        self.recordings.setdefault(call_id, []).append(rec)
        return rec.recording_id

    def ListRecordings(self, request: Any, context: grpc.ServicerContext) -> Any:
        _authorised(context)
        if not request.leg.dn or not request.leg.start_unix_ms:  # as the real monitor answers
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "leg.dn and leg.start_unix_ms are required")
        now = time.time()
        rows = []
        for rec in reversed(self.recordings.get(request.leg.call_id, [])):  # not in time order on purpose
            if rec.visible_at <= now:
                start, end = Timestamp(), Timestamp()
                start.FromNanoseconds(int(rec.start * 1e9))
                end.FromNanoseconds(int(rec.end * 1e9))
                rows.append(
                    monitor_service_pb2.RecordingInfo(
                        recording_id=rec.recording_id, start_time=start, end_time=end, file_name=rec.path.name
                    )
                )
        return monitor_service_pb2.ListRecordingsResponse(recordings=rows)

    def FetchRecording(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        _authorised(context)
        self.fetches.append(request.recording_id)
        for recs in self.recordings.values():
            for rec in recs:
                if rec.recording_id == request.recording_id:
                    with open(rec.path, "rb") as handle:
                        while chunk := handle.read(64 * 1024):
                            yield monitor_service_pb2.FetchRecordingResponse(chunk=chunk)
                            if self.chunk_delay:
                                time.sleep(self.chunk_delay)
                    return
        context.abort(grpc.StatusCode.NOT_FOUND, "WARNINGS.XAPI.FILE_NOT_FOUND")


@dataclass
class FakeAnalytics(analytics_service_pb2_grpc.AnalyticsServiceServicer):
    jobs: dict[str, analytics_service_pb2.SubmitRequest] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    refuse: set[str] = field(default_factory=set)  # call ids answered INVALID_ARGUMENT

    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:
        _authorised(context)
        if request.call_id in self.refuse:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no audio source this analytics can read (test)")
        with self.cond:
            duplicate = request.call_id in self.jobs
            self.jobs.setdefault(request.call_id, request)
            self.cond.notify_all()
        return analytics_service_pb2.SubmitResponse(job_id=request.call_id, duplicate=duplicate)

    def wait_job(self, call_id: str, timeout: float = 30.0) -> analytics_service_pb2.SubmitRequest:
        with self.cond:
            if not self.cond.wait_for(lambda: call_id in self.jobs, timeout):
                raise AssertionError(f"no analytics job for {call_id} within {timeout}s")
            return self.jobs[call_id]


class DispatcherProxy(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    """Stands between media and the real dispatcher. With `hold` set, it forwards the next Publish,
    and once the dispatcher has acknowledged it (the event is stored), keeps the answer from media
    until `release()`: a test can kill media after the dispatcher's ack and before media records it."""

    def __init__(self, dispatcher: str) -> None:
        self.hold = False
        self.acknowledged = threading.Event()
        self._released = threading.Event()
        self.replies: list[dispatcher_service_pb2.PublishResponse] = []
        self._upstream = grpc.insecure_channel(dispatcher)
        self._stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(self._upstream)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(self, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def Publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        _authorised(context)
        reply = self._stub.Publish(request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=15)
        self.replies.append(reply)
        if self.hold:
            self.hold = False
            self.acknowledged.set()
            self._released.wait(60)
        return reply

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._server.stop(0)
        self._upstream.close()


class Peers:
    """Media's peers: the fake monitor and analytics on their own gRPC servers, and the real
    dispatcher process (`tcxhooks dispatcher`) delivering JSON webhooks to a fake CRM."""

    def __init__(self, folder: Path) -> None:
        self.monitor, self.analytics = FakeMonitor(), FakeAnalytics()
        self.addresses: dict[str, str] = {}
        self._servers: list[grpc.Server] = []
        for name, servicer, add in (
            ("monitor", self.monitor, monitor_service_pb2_grpc.add_MonitorServiceServicer_to_server),
            ("analytics", self.analytics, analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server),
        ):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
            add(servicer, server)
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
            self._servers.append(server)
            self.addresses[name] = f"127.0.0.1:{port}"
        self.crm = Receiver().start()
        self.folder = folder
        config = write_config(
            folder,
            webhook={"url": self.crm.url, "format": "json"},
            services={**self.addresses, "token": TOKEN},
            log={"level": "warning"},
        )
        self.addresses["dispatcher"] = read_config(config)["services"]["dispatcher"]
        self._dispatcher_args = ["dispatcher", "-c", str(config)]
        self.start_dispatcher()

    def start_dispatcher(self) -> None:
        self.dispatcher = start(self._dispatcher_args, self.folder / "dispatcher.log")
        wait_healthy(self.addresses["dispatcher"])

    def recordings(self, call_id: str) -> list[Request]:
        """The recording webhooks the CRM got for this leg so far."""
        return [
            r
            for r in list(self.crm.requests)
            if r.json()["type"] == "recording.ready" and r.json()["data"]["id"] == call_id
        ]

    def wait_recording(self, call_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The `data` of the leg's recording webhook, once the CRM has it."""
        deadline = time.monotonic() + timeout
        while not (found := self.recordings(call_id)):
            if time.monotonic() > deadline:
                log = (self.folder / "dispatcher.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"no recording webhook for {call_id} within {timeout}s\n{log}")
            time.sleep(0.05)
        return dict(found[0].json()["data"])

    def stop(self) -> None:
        stop(self.dispatcher)
        self.crm.stop()
        for server in self._servers:
            server.stop(0)
