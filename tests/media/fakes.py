"""Small real gRPC peers of media for its tests: a MonitorService serving wav files, a recording
DispatcherService (idempotent on event_id, like the real one) and an AnalyticsService.

They run a grpc server in threads, so sync tests and the media subprocess can use them; each
checks the shared service token, which proves media sends it.
"""
from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import (analytics_service_pb2, analytics_service_pb2_grpc, dispatcher_service_pb2,
                         dispatcher_service_pb2_grpc, events_pb2, monitor_service_pb2,
                         monitor_service_pb2_grpc)

from tests.helpers.net import free_port

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
        now = time.time()
        rows = []
        for rec in reversed(self.recordings.get(request.leg.call_id, [])):  # not in time order on purpose
            if rec.visible_at <= now:
                start, end = Timestamp(), Timestamp()
                start.FromNanoseconds(int(rec.start * 1e9))
                end.FromNanoseconds(int(rec.end * 1e9))
                rows.append(monitor_service_pb2.RecordingInfo(recording_id=rec.recording_id, start_time=start,
                                                              end_time=end, file_name=rec.path.name))
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
class FakeDispatcher(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    calls: list[events_pb2.Event] = field(default_factory=list)
    stored: dict[str, events_pb2.Event] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)  # event id → time of its first Publish
    cond: threading.Condition = field(default_factory=threading.Condition)

    def Publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        _authorised(context)
        with self.cond:
            self.calls.append(request.event)
            duplicate = request.event.event_id in self.stored
            self.stored.setdefault(request.event.event_id, request.event)
            self.received.setdefault(request.event.event_id, time.time())
            self.cond.notify_all()
        return dispatcher_service_pb2.PublishResponse(sequence=len(self.stored), duplicate=duplicate, deliveries=1)

    def wait_event(self, event_id: str, timeout: float = 30.0) -> events_pb2.Event:
        with self.cond:
            if not self.cond.wait_for(lambda: event_id in self.stored, timeout):
                raise AssertionError(f"{event_id} not published within {timeout}s; got {sorted(self.stored)}")
            return self.stored[event_id]

    def publishes(self, event_id: str) -> int:
        with self.cond:
            return sum(1 for e in self.calls if e.event_id == event_id)


@dataclass
class FakeAnalytics(analytics_service_pb2_grpc.AnalyticsServiceServicer):
    jobs: dict[str, analytics_service_pb2.SubmitRequest] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:
        _authorised(context)
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


class Peers:
    """The three fakes on their own gRPC servers (one port each, as in `[services]`)."""

    def __init__(self) -> None:
        self.monitor, self.dispatcher, self.analytics = FakeMonitor(), FakeDispatcher(), FakeAnalytics()
        self.addresses: dict[str, str] = {}
        self._servers: list[grpc.Server] = []
        for name, servicer, add in (
                ("monitor", self.monitor, monitor_service_pb2_grpc.add_MonitorServiceServicer_to_server),
                ("dispatcher", self.dispatcher, dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server),
                ("analytics", self.analytics, analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server)):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
            add(servicer, server)
            port = free_port()
            server.add_insecure_port(f"127.0.0.1:{port}")
            server.start()
            self._servers.append(server)
            self.addresses[name] = f"127.0.0.1:{port}"

    def stop(self) -> None:
        for server in self._servers:
            server.stop(0)
