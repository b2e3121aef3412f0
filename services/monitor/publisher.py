"""Hands the outbox over: events to DispatcherService.Publish, due recordings to MediaService.RecordingsDue.

    publisher = Publisher(registry, app.channel("dispatcher"), app.channel("media"), enricher)
    publisher.add(rows)                       # rows just committed to the outbox
    app.spawn(publisher.run(app.stopping), "publisher")

Rows of one chain go strictly in order, each retried until acknowledged; chains proceed in
parallel, and the events of concurrent chains share PublishBatch calls (batcher.py). An
acknowledged row is deleted from the store (in batches); after a crash the rows still in the store
are sent again with the same event ids, which the dispatcher de-duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc

from tcxhooks.v1 import (
    dispatcher_service_pb2,
    dispatcher_service_pb2_grpc,
    events_pb2,
    media_service_pb2,
    media_service_pb2_grpc,
)

from .batcher import PublishBatcher, Refused, Unanswered
from .enrich import Enricher
from .metrics import EVENTS_EMITTED, PUBLISH_RETRIES
from .registry import OutRow, Registry

log = logging.getLogger(__name__)
# Chains published at once; also the largest PublishBatch a backlog makes. A backlog handed over in
# larger batches costs the dispatcher less per event (bench/dispatch.py: 256 sent ~25 % more a second
# than 64, at ~15 % less dispatcher CPU per webhook).
WORKERS = 256
DELETE_EVERY = 0.5
_PERMANENT = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
_EVENT_NAMES = {
    events_pb2.CALL_EVENT_TYPE_RINGING: "ringing",
    events_pb2.CALL_EVENT_TYPE_RINGING_STOPPED: "ringingstopped",
    events_pb2.CALL_EVENT_TYPE_ANSWERED: "answered",
    events_pb2.CALL_EVENT_TYPE_ENDED: "ended",
}


class Publisher:
    def __init__(
        self,
        registry: Registry,
        dispatcher: grpc.aio.Channel,
        media: grpc.aio.Channel | None,
        enricher: Enricher,
        fence: Callable[[], dispatcher_service_pb2.Fence | None] = lambda: None,
    ) -> None:
        self.registry = registry
        self.dispatcher = PublishBatcher(dispatcher_service_pb2_grpc.DispatcherServiceStub(dispatcher), fence=fence)
        self.media = media_service_pb2_grpc.MediaServiceStub(media) if media is not None else None
        self.enricher = enricher
        self.chains: dict[str, deque[OutRow]] = {}
        self.ready: asyncio.Queue[str] = asyncio.Queue()
        self.acked: list[int] = []
        self._acked_event = asyncio.Event()
        self.published_at: dict[str, float] = {}  # event_id → time acknowledged (bench/tests)
        self.last_ok = 0.0

    def add(self, rows: list[OutRow]) -> None:
        for row in rows:
            queue = self.chains.get(row.chain)
            if queue is None:
                queue = self.chains[row.chain] = deque()
                self.ready.put_nowait(row.chain)
            queue.append(row)

    def pending(self) -> int:
        return sum(len(q) for q in self.chains.values())

    async def run(self, stopping: asyncio.Event) -> None:
        workers = [asyncio.create_task(self._worker(stopping)) for _ in range(WORKERS)]
        deleter = asyncio.create_task(self._deleter(stopping))
        await stopping.wait()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._acked_event.set()
        await deleter

    async def _deleter(self, stopping: asyncio.Event) -> None:
        while True:
            await self._acked_event.wait()
            if not stopping.is_set():
                await asyncio.sleep(DELETE_EVERY)  # one transaction for many rows: fewer fsyncs beside the commits
            self._acked_event.clear()
            seqs, self.acked = self.acked, []
            if seqs:
                try:
                    await self.registry.delete_outbox(seqs)
                except Exception as exc:  # the rows are sent again after a restart; the dispatcher de-duplicates
                    log.warning("cannot delete %d sent outbox rows: %s", len(seqs), exc)
            if stopping.is_set():
                return

    async def _worker(self, stopping: asyncio.Event) -> None:
        while True:
            chain = await self.ready.get()
            queue = self.chains[chain]
            while queue:
                row = queue[0]
                delay = 0.1
                while not await self._send(row):
                    PUBLISH_RETRIES.labels(row.target).inc()
                    await asyncio.sleep(delay)
                    delay = min(5.0, delay * 2)
                queue.popleft()
                self.acked.append(row.seq)
                self._acked_event.set()
            del self.chains[chain]

    async def _send(self, row: OutRow) -> bool:
        """True once the peer acknowledged (or refused for good); False to retry."""
        try:
            if row.target == "dispatcher":
                await self._publish(row)
            elif self.media is not None:
                await self._recordings_due(row)
            return True
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _PERMANENT:
                log.error(
                    "%s refused %s row of chain %s for good: %s", row.target, row.target, row.chain, exc.details()
                )
                return True
            log.warning("%s unavailable (%s), retrying chain %s", row.target, exc.code().name, row.chain)
            return False
        except Refused as exc:
            log.error("dispatcher refused an event of chain %s for good: %s", row.chain, exc)
            return True
        except Unanswered as exc:
            log.warning("%s; retrying chain %s", exc, row.chain)
            return False

    async def _publish(self, row: OutRow) -> None:
        event = row.message if row.message is not None else events_pb2.Event.FromString(row.payload)
        if event.call.type == events_pb2.CALL_EVENT_TYPE_ENDED:
            enriched = await self.enricher.ended(
                event.call, event.occur_time.ToSeconds() + event.occur_time.nanos / 1e9, row.needs
            )
            event.call.CopyFrom(enriched)
        await self.dispatcher.publish(event)
        self.last_ok = time.time()
        self.published_at[event.event_id] = self.last_ok
        if len(self.published_at) > 100_000:
            self.published_at.clear()
        EVENTS_EMITTED.labels(_EVENT_NAMES.get(event.call.type, "other")).inc()

    async def _recordings_due(self, row: OutRow) -> None:
        assert self.media is not None
        request: Any = media_service_pb2.RecordingsDueRequest.FromString(row.payload)
        occur = request.leg.end_unix_ms / 1000
        request.ended.CopyFrom(await self.enricher.ended(request.ended, occur, row.needs))
        await self.media.RecordingsDue(request, timeout=15)
