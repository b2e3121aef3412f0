"""Hands finished jobs to the dispatcher: `<call_id>/analytics` as AnalyticsReady or AnalyticsFailed.

Publishing is retried until the dispatcher acknowledges (platform.retry); the event id makes a
repeat after a crash harmless (the dispatcher stores an event id once). An event the dispatcher
refuses as invalid is logged, counted and not sent again, so it cannot hold back the jobs after it.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.platform.retry import Refused, until_acknowledged
from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc, events_pb2

from .jobstore import DONE, Job, JobStore
from .metrics import REFUSED, STORE_ERRORS

log = logging.getLogger(__name__)

IDLE = 2.0  # a finished job wakes the loop; this catches jobs finished by other replicas


def event_of(job: Job) -> events_pb2.Event:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    event = events_pb2.Event(event_id=f"{job.call_id}/analytics", chain=job.chain, occur_time=stamp)
    if job.state == DONE and job.result is not None:
        event.analytics.CopyFrom(job.result)
    else:
        event.analytics_failed.CopyFrom(events_pb2.AnalyticsFailed(call_id=job.call_id, error=job.error))
    return event


class Publisher:
    def __init__(self, jobs: JobStore, channel: grpc.aio.Channel) -> None:
        self.jobs = jobs
        self.stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)
        self.wake = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Publishes every finished, unpublished job, oldest first, until the service stops."""
        while not stopping.is_set():
            self.wake.clear()
            try:
                if not await self._publish_finished(stopping):
                    return
            except Exception as exc:  # the store is away: what is unpublished stays so and goes later
                log.warning(
                    "analytics publisher: store error, trying again in %.0f s: %s", IDLE, str(exc) or type(exc).__name__
                )
                STORE_ERRORS.inc()
            await sleep_or_stop(IDLE, self.wake, stopping)

    async def _publish_finished(self, stopping: asyncio.Event) -> bool:
        """Publishes the finished, unpublished jobs; False when the service stops meanwhile."""
        for job in await self.jobs.unpublished():
            send = functools.partial(
                self.stub.Publish, dispatcher_service_pb2.PublishRequest(event=event_of(job)), timeout=15
            )
            try:
                reply = await until_acknowledged(
                    send, "dispatcher Publish", stopping, log_extra={"call_id": job.call_id}
                )
            except Refused as exc:  # the result stays readable through GetJob; the queue behind it moves on
                log.error("%s; not publishing it again", exc, extra={"call_id": job.call_id})
                REFUSED.inc()
                await self.jobs.mark_published(job.call_id)
                continue
            if reply is None:
                return False
            await self.jobs.mark_published(job.call_id)
            log.info(
                "published %s",
                "analytics" if job.state == DONE else "analytics_failed",
                extra={"call_id": job.call_id, "duplicate": reply.duplicate},
            )
        return True
