"""Publish with group commit: concurrent Publish calls share one store transaction.

    intake = Intake(outbox, endpoints, worker)
    published = await intake.submit(new_event)      # resolves once the event is committed

Submitted events queue up; one committer task stores everything queued so far (up to
`max_batch`) per transaction, in submission order. Deliveries that are their chain's head are
claimed in the same transaction, as far as the worker has room, and handed to it as soon as the
commit is done: a lone event goes out without waiting for a claim, nor for the fsync that makes it
durable. That fsync runs beside the next batch's commit; each event's future resolves after it, so
no future resolves before its event is durable. A failed commit or fsync fails every future of its
batch (the publisher sends them again; stored ones are answered as duplicates).
"""

from __future__ import annotations

import asyncio
import logging

from .endpoints import Endpoints
from .metrics import PUBLISHED, REFUSED
from .outbox import Outbox
from .records import NewEvent, Published
from .worker import Worker

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, outbox: Outbox, endpoints: Endpoints, worker: Worker, max_batch: int = 512) -> None:
        self.outbox = outbox
        self.endpoints = endpoints
        self.worker = worker
        self.max_batch = max_batch
        self._queue: list[tuple[NewEvent, asyncio.Future[Published]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refusals: dict[str, int] = {}
        self._syncing: set[asyncio.Task[None]] = set()

    def submit(self, item: NewEvent) -> asyncio.Future[Published]:
        if self._loop is None:  # looked up once: get_running_loop() costs a getpid() call per event
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Published] = self._loop.create_future()
        self._queue.append((item, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._drain(), name="dispatcher.intake")
        return future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            results = await self._commit(batch)
            if results is not None:
                task = asyncio.create_task(self._acknowledge(batch, results), name="dispatcher.intake.sync")
                self._syncing.add(task)
                task.add_done_callback(self._syncing.discard)

    async def _commit(self, batch: list[tuple[NewEvent, asyncio.Future[Published]]]) -> list[Published] | None:
        """Stores the batch and hands its claimed deliveries to the worker; None when the commit failed."""
        routing = self.endpoints.routing()
        try:
            results, claimed = await self.outbox.publish(
                [item for item, _ in batch], routing, self.worker.room(), self.worker.lease_ttl
            )
        except Exception as exc:
            _fail(batch, exc)
            return None
        self.worker.adopt(claimed)
        deliveries = duplicates = 0
        for result in results:
            duplicates += result.duplicate
            deliveries += result.deliveries
            self.endpoints.stored(result.endpoints)
            for name in result.refused:
                REFUSED.labels(name, routing.refusing[name]).inc()
                self._refused(name, routing.refusing[name])
        PUBLISHED.labels("stored").inc(len(batch) - duplicates)
        PUBLISHED.labels("duplicate").inc(duplicates)
        if deliveries > len(claimed):  # some wait for the worker's next claim
            self.worker.wake()
        return results

    async def _acknowledge(
        self, batch: list[tuple[NewEvent, asyncio.Future[Published]]], results: list[Published]
    ) -> None:
        try:
            await self.outbox.sync()
        except Exception as exc:
            log.error("the store could not sync a publish to disk: %s", exc)
            _fail(batch, exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _refused(self, endpoint: str, reason: str) -> None:
        """Logs the first refusal of an endpoint and every 1,000th after (the metric counts each)."""
        count = self._refusals[endpoint] = self._refusals.get(endpoint, 0) + 1
        if count % 1000 == 1:
            log.warning("endpoint %s takes no new deliveries (%s): %d events refused so far", endpoint, reason, count)


def _fail(batch: list[tuple[NewEvent, asyncio.Future[Published]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
