"""Coalesces concurrent publishes into PublishBatch calls.

    batcher = PublishBatcher(dispatcher_stub, fence=lambda: pb.Fence(lease=lease.name, number=lease.fence))
    response = await batcher.publish(event)    # a PublishResponse once the event is durable

Each caller awaits its own event; while a batch is on the wire the next events gather, so a
backlog goes out in large batches (one gRPC call and one store transaction for many events) and a
lone event goes out at once. An RPC failure fails every event of its batch (the callers retry);
an event the dispatcher refuses raises Refused for its caller only. Against a dispatcher without
PublishBatch (an older version during a rolling upgrade) it falls back to unary Publish. Every call
carries the lease's fence: a monitor that lost its lease is refused (ABORTED) once its successor
has published, and retries until it notices (platform/lease.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc, events_pb2

log = logging.getLogger(__name__)
MAX_BATCH = 256
MAX_IN_FLIGHT = 2


class Refused(Exception):
    """The dispatcher refused this event for good (it would refuse it again)."""


class Unanswered(Exception):
    """The dispatcher's answer did not account for every event: send them again."""


class PublishBatcher:
    def __init__(
        self,
        stub: dispatcher_service_pb2_grpc.DispatcherServiceStub,
        timeout: float = 15.0,
        fence: Callable[[], pb.Fence | None] = lambda: None,
    ) -> None:
        self.stub = stub
        self.timeout = timeout
        self.fence = fence
        self._pending: list[tuple[events_pb2.Event, asyncio.Future[pb.PublishResponse]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._unary = False

    async def publish(self, event: events_pb2.Event) -> pb.PublishResponse:
        future: asyncio.Future[pb.PublishResponse] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._send_pending()
        return await future

    def _send_pending(self) -> None:
        while self._pending and len(self._in_flight) < MAX_IN_FLIGHT:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            task = asyncio.create_task(self._send(batch), name="monitor.publish-batch")
            self._in_flight.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._send_pending()

    async def _send(self, batch: list[tuple[events_pb2.Event, asyncio.Future[pb.PublishResponse]]]) -> None:
        try:
            events = [event for event, _ in batch]
            results = await (self._publish_each(events) if self._unary else self._publish_batch(events))
        except (grpc.aio.AioRpcError, Unanswered) as exc:
            results = [exc] * len(batch)
        except BaseException as exc:  # cancelled (shutdown) or a bug: no caller may wait forever
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            raise
        _settle(batch, results)

    async def _publish_batch(self, events: list[events_pb2.Event]) -> list[pb.PublishResponse | BaseException]:
        try:
            reply = await self.stub.PublishBatch(
                pb.PublishBatchRequest(events=events, fence=self.fence()), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            log.warning("the dispatcher has no PublishBatch (an older version?): publishing one by one")
            self._unary = True
            return await self._publish_each(events)
        if len(reply.outcomes) != len(events):
            raise Unanswered(f"the dispatcher answered {len(reply.outcomes)} outcomes for {len(events)} events")
        return [
            outcome.stored if outcome.HasField("stored") else Refused(outcome.refused or "refused")
            for outcome in reply.outcomes
        ]

    async def _publish_each(self, events: list[events_pb2.Event]) -> list[pb.PublishResponse | BaseException]:
        """Unary Publish calls, concurrently; each event's answer or error in its place."""
        return list(
            await asyncio.gather(
                *(
                    self.stub.Publish(pb.PublishRequest(event=event, fence=self.fence()), timeout=self.timeout)
                    for event in events
                ),
                return_exceptions=True,
            )
        )


def _settle(
    batch: list[tuple[events_pb2.Event, asyncio.Future[pb.PublishResponse]]],
    results: list[pb.PublishResponse | BaseException],
) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
