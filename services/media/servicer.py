"""MediaService over gRPC: RecordingsDue (durable, idempotent), GetRecording, Purge, FetchAudio."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import events_pb2, media_service_pb2, media_service_pb2_grpc

from . import metrics
from .config import RecordingsConfig
from .errors import InvalidRequest, NotFound, ObjectMissing, StorageError
from .jobstore import DONE, FAILED, NO_RECORDING, PENDING, PURGED, STORED, JobStore
from .links import Links
from .retention import Retention
from .sources import SAFE_DN
from .storage import Storage

log = logging.getLogger(__name__)

CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_STATES = {
    PENDING: media_service_pb2.RECORDING_JOB_STATE_PENDING,
    STORED: media_service_pb2.RECORDING_JOB_STATE_PENDING,
    DONE: media_service_pb2.RECORDING_JOB_STATE_DONE,
    NO_RECORDING: media_service_pb2.RECORDING_JOB_STATE_NO_RECORDING,
    FAILED: media_service_pb2.RECORDING_JOB_STATE_FAILED,
    PURGED: media_service_pb2.RECORDING_JOB_STATE_PURGED,
}


def chain_of(call_id: str) -> str:
    return call_id.rsplit("-", 1)[0]


class MediaServicer(media_service_pb2_grpc.MediaServiceServicer):
    def __init__(
        self,
        config: RecordingsConfig,
        jobs: JobStore,
        links: Links,
        retention: Retention,
        storage: Storage,
        wake: Callable[[], None],
    ) -> None:
        self.config, self.jobs, self.links, self.retention, self.wake = config, jobs, links, retention, wake
        self.storage = storage

    async def RecordingsDue(
        self, request: media_service_pb2.RecordingsDueRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> media_service_pb2.RecordingsDueResponse:
        call_id, dn = request.leg.call_id, request.leg.dn
        problem = ""
        if not CALL_ID.fullmatch(call_id) or ".." in call_id:
            problem = f"leg.call_id {call_id[:80]!r} is not a call id"
        elif dn and (not SAFE_DN.fullmatch(dn) or dn in (".", "..")):
            problem = f"leg.dn {dn[:80]!r} is not a DN"
        if problem:
            log.warning("RecordingsDue rejected: %s", problem)
            metrics.ERRORS.labels("bad_request").inc()
            raise InvalidRequest(problem)
        if not self.config.enabled:
            log.debug("recordings disabled; %s ignored", call_id)
            return media_service_pb2.RecordingsDueResponse(duplicate=False)
        added = await self.jobs.add(request, request.chain or chain_of(call_id))
        if added:
            log.info("recordings of %s due (extension %s)", call_id, request.leg.dn or "?", extra={"call_id": call_id})
            self.wake()
        return media_service_pb2.RecordingsDueResponse(duplicate=not added)

    async def GetRecording(
        self, request: media_service_pb2.GetRecordingRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> media_service_pb2.GetRecordingResponse:
        job = await self.jobs.get(request.call_id)
        if job is None:
            raise NotFound(f"no recording job for {request.call_id[:80]!r}")
        reply = media_service_pb2.GetRecordingResponse(call_id=job.call_id, state=_STATES[job.state], error=job.error)
        if job.expire_at:
            reply.expire_time.CopyFrom(Timestamp(seconds=int(job.expire_at)))
        for stored in await self.jobs.files(job.call_id):
            reply.files.append(
                events_pb2.RecordingFile(
                    url=self.links.url(job.call_id, stored.idx, int(job.expire_at)),
                    duration_seconds=stored.duration,
                    size_bytes=stored.size,
                )
            )
        return reply

    async def Purge(
        self, request: media_service_pb2.PurgeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> media_service_pb2.PurgeResponse:
        now = request.now.seconds + request.now.nanos / 1e9 if request.HasField("now") else None
        try:
            purged = await self.retention.purge(now)
        except StorageError as exc:
            raise StorageError(f"purge incomplete: {exc}") from exc
        return media_service_pb2.PurgeResponse(purged=purged)

    async def FetchAudio(
        self, request: media_service_pb2.FetchAudioRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[media_service_pb2.FetchAudioResponse]:
        """The stored mp3's bytes, for analytics: the only way it reads a recording."""
        missing = f"no stored file {request.file} for {request.call_id[:80]!r}"
        found = await self.jobs.file(request.call_id, request.file)
        if found is None or found[0] == PURGED:
            raise NotFound(missing)
        try:
            async for chunk in self.storage.read(found[1].object_key):
                yield media_service_pb2.FetchAudioResponse(chunk=chunk)
        except ObjectMissing as exc:
            raise ObjectMissing(f"{missing} (no longer stored)") from exc
        except StorageError as exc:
            log.error("cannot read %s: %s", found[1].object_key, exc, extra={"call_id": request.call_id})
            metrics.ERRORS.labels("storage").inc()
            raise StorageError(f"storage unavailable: {exc}") from exc
