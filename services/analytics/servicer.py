"""AnalyticsService: Submit stores a job per leg (idempotent on call_id); GetJob reports on it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from tcxhooks.v1 import analytics_service_pb2 as pb
from tcxhooks.v1 import analytics_service_pb2_grpc

from .config import AnalyticsConfig
from .errors import Disabled, InvalidRequest, NotFound
from .jobstore import DONE, FAILED, QUEUED, RUNNING, AudioRef, JobStore

STATES = {
    QUEUED: pb.JOB_STATE_QUEUED,
    RUNNING: pb.JOB_STATE_RUNNING,
    DONE: pb.JOB_STATE_DONE,
    FAILED: pb.JOB_STATE_FAILED,
}


class AnalyticsServicer(analytics_service_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, config: AnalyticsConfig, jobs: JobStore, backend_name: str, wake: asyncio.Event) -> None:
        self.config = config
        self.jobs = jobs
        self.backend_name = backend_name
        self.wake = wake

    async def Submit(self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.SubmitResponse:
        if not self.config.enabled:
            raise Disabled("analytics disabled ([analytics] enabled = false)")
        problem = _invalid(request)
        if problem:
            raise InvalidRequest(problem)
        audio = [AudioRef(a.file, max(0.0, a.duration_seconds), max(0, a.channels)) for a in request.audio]
        created = await self.jobs.submit(
            request.call_id, request.chain or request.call_id.split("-")[0], audio, self.backend_name
        )
        if created:
            self.wake.set()
        return pb.SubmitResponse(job_id=request.call_id, duplicate=not created)

    async def GetJob(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.GetJobResponse:
        job = await self.jobs.get(request.call_id)
        if job is None:
            raise NotFound(f"no analytics job for call {request.call_id!r}")
        state = RUNNING if job.running else job.state
        reply = pb.GetJobResponse(
            call_id=job.call_id,
            state=STATES.get(state, pb.JOB_STATE_UNSPECIFIED),
            attempts=job.attempts,
            error=job.error,
        )
        if job.result is not None:
            reply.result.CopyFrom(job.result)
        return reply


def _invalid(request: pb.SubmitRequest) -> str:
    if not request.call_id.strip():
        return "call_id is empty"
    if len(request.call_id) > 200:
        return "call_id is longer than 200 characters"
    if not request.audio:
        return "no audio: at least one AudioSource naming a file of the leg is needed"
    for index, source in enumerate(request.audio):
        if source.file < 1:
            return f"audio[{index}].file must name the leg's file in media (1, 2, …); a url is not read"
    return ""
