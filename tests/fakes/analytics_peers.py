"""Analytics' peers in its tests: a DispatcherService recording what is published, and media's FetchAudio
over files the test stores. Each binds a port the system picks (`address`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from tcxhooks.v1 import (
    dispatcher_service_pb2,
    dispatcher_service_pb2_grpc,
    events_pb2,
    media_service_pb2,
    media_service_pb2_grpc,
)


class RecordingDispatcher(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    """Stores published events once per event_id (as the real dispatcher does) and records every call."""

    def __init__(self) -> None:
        self.events: dict[str, events_pb2.Event] = {}
        self.received_at: dict[str, float] = {}
        self.calls = 0
        self.reject_next = 0
        self.refuse: set[str] = set()  # event ids answered INVALID_ARGUMENT (an older dispatcher's answer)
        self._cond = threading.Condition()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(self, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def Publish(
        self, request: dispatcher_service_pb2.PublishRequest, context: grpc.ServicerContext
    ) -> dispatcher_service_pb2.PublishResponse:
        with self._cond:
            self.calls += 1
            if self.reject_next > 0:
                self.reject_next -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "dispatcher store busy (test)")
            if request.event.event_id in self.refuse:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "event has no payload this dispatcher knows (test)")
            event = request.event
            duplicate = event.event_id in self.events
            if not duplicate:
                self.events[event.event_id] = event
                self.received_at[event.event_id] = time.monotonic()
            self._cond.notify_all()
        return dispatcher_service_pb2.PublishResponse(sequence=1, duplicate=duplicate, deliveries=1)

    def wait_for(self, event_id: str, timeout: float = 30.0) -> events_pb2.Event:
        with self._cond:
            if not self._cond.wait_for(lambda: event_id in self.events, timeout):
                raise AssertionError(f"no event {event_id} within {timeout}s; have {sorted(self.events)}")
            return self.events[event_id]

    def __enter__(self) -> RecordingDispatcher:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(0)


class FakeMedia(media_service_pb2_grpc.MediaServiceServicer):
    """MediaService.FetchAudio over the files a test stores per (call id, file number), as media
    streams its stored mp3s; `unavailable_next` answers UNAVAILABLE that many times first."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, int], Path] = {}
        self.fetches: list[tuple[str, int]] = []
        self.unavailable_next = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        media_service_pb2_grpc.add_MediaServiceServicer_to_server(self, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def add(self, call_id: str, file: int, path: Path) -> None:
        self.files[(call_id, file)] = path

    def FetchAudio(
        self, request: media_service_pb2.FetchAudioRequest, context: grpc.ServicerContext
    ) -> Iterator[media_service_pb2.FetchAudioResponse]:
        self.fetches.append((request.call_id, request.file))
        if self.unavailable_next > 0:
            self.unavailable_next -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "storage unavailable (test)")
        path = self.files.get((request.call_id, request.file))
        if path is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no stored file {request.file} for {request.call_id!r}")
        with open(path, "rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield media_service_pb2.FetchAudioResponse(chunk=chunk)

    def __enter__(self) -> FakeMedia:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(0)
