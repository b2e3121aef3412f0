"""Announcing a stored recording: `recording.ready` to the dispatcher, the audio to analytics.

    event = recording_event(job, files, urls, full_info=True)
    await publisher.publish(event)                        # grpc.aio.AioRpcError when not acknowledged
    await publisher.submit(analytics_request(job, files))

The event id is `<call_id>/recording`: publishing it again (after a crash between the
dispatcher's acknowledgement and our own bookkeeping) is absorbed by the dispatcher.
"""

from __future__ import annotations

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    dispatcher_service_pb2,
    dispatcher_service_pb2_grpc,
    events_pb2,
)

from .jobstore import Job, StoredFile

TIMEOUT = 15.0


def event_id(call_id: str) -> str:
    return f"{call_id}/recording"


def recording_event(job: Job, files: list[StoredFile], urls: list[str], full_info: bool) -> events_pb2.Event:
    occur = Timestamp()
    occur.FromNanoseconds(time.time_ns())
    ready = events_pb2.RecordingReady(
        call_id=job.call_id,
        files=[
            events_pb2.RecordingFile(url=url, duration_seconds=f.duration, size_bytes=f.size)
            for f, url in zip(files, urls, strict=False)
        ],
    )
    if full_info and job.request.HasField("ended"):
        ready.call.CopyFrom(job.request.ended)
    return events_pb2.Event(event_id=event_id(job.call_id), chain=job.chain, occur_time=occur, recording=ready)


def analytics_request(job: Job, files: list[StoredFile]) -> analytics_service_pb2.SubmitRequest:
    """The leg's files by reference: analytics reads each through MediaService.FetchAudio."""
    return analytics_service_pb2.SubmitRequest(
        call_id=job.call_id,
        chain=job.chain,
        audio=[
            analytics_service_pb2.AudioSource(
                file=f.idx, object_key=f.object_key, duration_seconds=f.duration, channels=f.channels
            )
            for f in files
        ],
    )


class Publisher:
    """The two peers a stored recording is announced to; each call raises grpc.aio.AioRpcError when it
    is not acknowledged (the job runner retries it, platform.retry)."""

    def __init__(self, dispatcher: grpc.aio.Channel, analytics: grpc.aio.Channel | None) -> None:
        self._dispatcher = dispatcher_service_pb2_grpc.DispatcherServiceStub(dispatcher)
        self._analytics = analytics_service_pb2_grpc.AnalyticsServiceStub(analytics) if analytics else None

    async def publish(self, event: events_pb2.Event) -> dispatcher_service_pb2.PublishResponse:
        """Hands the event to the dispatcher (its `duplicate` tells a repeat of a stored event)."""
        reply: dispatcher_service_pb2.PublishResponse = await self._dispatcher.Publish(
            dispatcher_service_pb2.PublishRequest(event=event), timeout=TIMEOUT
        )
        return reply

    async def submit(self, request: analytics_service_pb2.SubmitRequest) -> analytics_service_pb2.SubmitResponse:
        assert self._analytics is not None, "analytics disabled"
        reply: analytics_service_pb2.SubmitResponse = await self._analytics.Submit(request, timeout=TIMEOUT)
        return reply
