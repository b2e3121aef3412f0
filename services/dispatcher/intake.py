"""Publish with group commit: concurrent Publish calls share one store transaction.

    intake = Intake(outbox, endpoints.route, on_commit=worker.wake)
    published = await intake.publish(new_event)      # returns once the event is committed

The first caller to find the lock free commits everything queued so far (up to `max_batch`);
callers arriving meanwhile wait for the next commit. No call returns before its event is durable.
"""
from __future__ import annotations

import asyncio
from typing import Callable

from .metrics import PUBLISHED
from .outbox import NewEvent, Outbox, Published, Router


class Intake:
    def __init__(self, outbox: Outbox, route: Router, on_commit: Callable[[], None], max_batch: int = 512) -> None:
        self.outbox = outbox
        self.route = route
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._queue: list[tuple[NewEvent, asyncio.Future[Published]]] = []
        self._lock = asyncio.Lock()

    async def publish(self, item: NewEvent) -> Published:
        future: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        async with self._lock:
            if not future.done():
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                # shielded: a caller that gives up must not abort the commit of the others' events
                await asyncio.shield(self._commit(batch))
        return await future

    async def _commit(self, batch: list[tuple[NewEvent, asyncio.Future[Published]]]) -> None:
        try:
            results = await self.outbox.publish([item for item, _ in batch], self.route)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        delivered = False
        for (_, future), result in zip(batch, results):
            PUBLISHED.labels("duplicate" if result.duplicate else "stored").inc()
            delivered = delivered or result.deliveries > 0
            if not future.done():
                future.set_result(result)
        if delivered:
            self.on_commit()
