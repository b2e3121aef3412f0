"""Coalesces concurrent publishes into PublishBatch calls; a lone event goes on an open PublishStream.

    batcher = PublishBatcher(dispatcher_stub, fence=lambda: pb.Fence(lease=lease.name, number=lease.fence))
    response = await batcher.publish(event)    # a PublishResponse once the event is durable

Each caller awaits its own event; while a batch is on the wire the next events gather, so a
backlog goes out in large batches (one gRPC call and one store transaction for many events) and a
lone event goes out at once, as a message on one long-lived PublishStream call (eventstream.py: it
reaches the dispatcher sooner than a call of its own). An RPC failure fails every event of its
batch (the callers retry); an event the dispatcher refuses raises Refused for its caller only.
When the stream ends before answering an event (the dispatcher ends it at an invalid event, at a
restart; an older dispatcher has no PublishStream), the event goes by PublishBatch at once, which
refuses a bad event alone, and lone events go by PublishBatch for a while. Against a dispatcher
without PublishBatch (an older version during a rolling upgrade) it falls back to unary Publish.
Every call and message carries the lease's fence: a monitor that lost its lease is refused
(ABORTED) once its successor has published, and retries until it notices (platform/lease.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc, events_pb2

from .eventstream import EventStream, StreamEnded

log = logging.getLogger(__name__)
MAX_BATCH = 256
MAX_IN_FLIGHT = 2
STREAM_REST = 60.0  # seconds without the stream after it failed an event that PublishBatch then took


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
        stream_rest: float = STREAM_REST,
    ) -> None:
        self.stub = stub
        self.timeout = timeout
        self.fence = fence
        self._pending: list[tuple[events_pb2.Event, asyncio.Future[pb.PublishResponse]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._unary = False
        self.stream_rest = stream_rest
        self._stream = EventStream(stub, timeout)
        self._stream_rests_until = 0.0  # monotonic

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
            if len(events) == 1 and not self._unary and time.monotonic() >= self._stream_rests_until:
                results = await self._publish_alone(events[0])
            else:
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

    async def _publish_alone(self, event: events_pb2.Event) -> list[pb.PublishResponse | BaseException]:
        """The event as a message on the stream. When the call ends before answering it (the dispatcher
        refused this or an earlier event, restarted, or has no PublishStream), the event goes by
        PublishBatch at once, and the stream rests for `stream_rest` seconds if that is answered."""
        try:
            return [await self._stream.publish(pb.PublishRequest(event=event, fence=self.fence()))]
        except TimeoutError as exc:
            raise Unanswered(str(exc)) from None
        except StreamEnded as exc:
            ended = str(exc)
        results = await self._publish_batch([event])
        log.warning("%s; lone events go by PublishBatch for %g s", ended, self.stream_rest)
        self._stream_rests_until = time.monotonic() + self.stream_rest
        return results

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
