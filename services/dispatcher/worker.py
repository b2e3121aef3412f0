"""Delivery: claims due deliveries from the outbox, hands them to their sinks, records every attempt.

    worker = Worker(outbox, endpoints, RetryPolicy(schedule), lease_ttl=60, batch=256)
    app.spawn(worker.run(app.stopping), "worker")
    worker.adopt(claimed)    # deliveries a Publish claimed as it stored them
    worker.wake()            # after a Publish committed deliveries it did not claim

Each endpoint's sink does the sending (sinks.py); what its result means for the delivery (retry,
dead, endpoint gone) is decided here, alike for every kind of endpoint. One loop talks to the
store: each cycle commits the outcomes gathered since the last one and claims new due deliveries
in the same transaction (group commit). Each endpoint has `concurrency` consumers taking claimed
deliveries from its queue. On shutdown no new claims are
made, requests in flight finish, and deliveries not yet sent are released (never acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable

from google.protobuf.message import DecodeError

from tcxhooks.platform.config import redacted_urls
from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2

from .endpoints import Endpoint, Endpoints
from .metrics import ATTEMPTS, ATTEMPTS_DELIVERED, DEAD, DELIVERED, LATENCY, RETRIES
from .outbox import Outbox
from .records import AttemptRecord, Claimed, Outcome
from .retry import RetryPolicy
from .sinks import Delivery, Result, Verdict

log = logging.getLogger(__name__)
_STOP = object()
# Claimed-but-unfinished deliveries kept in memory per endpoint, in claim batches: enough that each
# cycle finds work queued while the previous batch is still on the wire.
HELD_BATCHES = 4
MAX_CYCLE_GAP = 0.01


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if status else "none"


def _storable(text: str) -> str:
    """NUL cannot be stored in a Postgres TEXT column."""
    return text.replace("\x00", "\ufffd")


class Worker:
    def __init__(
        self, outbox: Outbox, endpoints: Endpoints, policy: RetryPolicy, lease_ttl: float, batch: int, poll: float = 0.5
    ) -> None:
        self.outbox = outbox
        self.endpoints = endpoints
        self.policy = policy
        self.lease_ttl = lease_ttl
        self.batch = batch
        self.poll = poll
        self._wake = asyncio.Event()
        self._full = asyncio.Event()  # a batch of outcomes waits for the next cycle
        self._done: list[Outcome] = []
        self._held: dict[int, Claimed] = {}
        self._held_by: Counter[str] = Counter()
        self._closing = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        consumers = [
            asyncio.create_task(self._consume(endpoint), name=f"deliver.{endpoint.name}")
            for endpoint in self.endpoints
            for _ in range(endpoint.concurrency)
        ]
        renewed = time.monotonic()
        try:
            while not stopping.is_set():
                self._wake.clear()
                started = time.monotonic()
                finished = len(self._done)
                claimed = await self._cycle(claim=True)
                if time.monotonic() - renewed > self.lease_ttl / 3:
                    renewed = time.monotonic()
                    await self._guard(self.outbox.renew(list(self._held), self.lease_ttl), "lease renewal")
                if not claimed and not self._done:
                    await sleep_or_stop(self.poll, stopping, self._wake)
                # Under load, let work gather between cycles: fewer, larger transactions. The pause
                # grows with the work the last cycle moved, so a lone event is never held back.
                # A full batch of outcomes ends the pause: the pause must not cap the rate.
                moved = min(1.0, (finished + len(claimed)) / self.batch)
                gap = MAX_CYCLE_GAP * moved - (time.monotonic() - started)
                if gap > 0 and len(self._done) < self.batch:
                    self._full.clear()
                    await sleep_or_stop(gap, self._full)
        finally:
            self._closing = True
            for endpoint in self.endpoints:
                for _ in range(endpoint.concurrency):
                    endpoint.queue.put_nowait(_STOP)
            await asyncio.gather(*consumers, return_exceptions=True)
            await self._cycle(claim=False)
            await self.endpoints.flush()

    async def _guard(self, coro: Awaitable[object], what: str) -> bool:
        try:
            await coro
            return True
        except Exception as exc:  # store down: keep what we have, try again shortly
            log.warning("dispatcher %s failed (%s); retrying", what, exc)
            await asyncio.sleep(1.0)
            return False

    def room(self) -> dict[str, int]:
        """How many more deliveries each enabled endpoint may have claimed now (none once closing)."""
        if self._closing:
            return {}
        return {
            name: min(self.batch, self.batch * HELD_BATCHES - self._held_by[name])
            for name in self.endpoints.enabled_names()
        }

    def adopt(self, claimed: list[Claimed]) -> None:
        """Deliveries claimed elsewhere (by a publish) join the ones this worker sends."""
        for item in claimed:
            self._held[item.id] = item
            self._held_by[item.endpoint] += 1
            if self._closing:  # never sent: the last cycle releases it
                self._finish(Outcome(item, "release"))
            else:
                self.endpoints.get(item.endpoint).queue.put_nowait(item)

    async def _cycle(self, claim: bool) -> list[Claimed]:
        outcomes, self._done = self._done, []
        limits = self.room() if claim else {}
        try:
            claimed = await self.outbox.cycle(outcomes, limits, self.lease_ttl)
        except Exception as exc:
            self._done = outcomes + self._done
            log.warning("dispatcher store cycle failed (%s); retrying", exc)
            await asyncio.sleep(1.0)
            return []
        for outcome in outcomes:
            if self._held.pop(outcome.delivery.id, None) is not None:
                self._held_by[outcome.delivery.endpoint] -= 1
        self.adopt(claimed)
        await self._guard(self.endpoints.flush(), "endpoint state save")
        return claimed

    def _finish(self, outcome: Outcome) -> None:
        self._done.append(outcome)
        self._wake.set()
        if len(self._done) >= self.batch:
            self._full.set()

    async def _consume(self, endpoint: Endpoint) -> None:
        while True:
            item = await endpoint.queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Claimed)
            if self._closing or not endpoint.enabled:
                self._finish(Outcome(item, "release"))
                continue
            self._finish(await self._deliver(endpoint, item))

    async def _deliver(self, endpoint: Endpoint, item: Claimed) -> Outcome:
        number = item.attempts + 1
        at = time.time()
        started = time.perf_counter()
        try:
            event = events_pb2.Event.FromString(item.payload)
        except DecodeError as exc:  # validated before it was stored: damaged since
            result = Result(Verdict.DEAD, error=f"cannot read the stored event: {exc}")
        else:
            try:
                result = await endpoint.sink.deliver(
                    Delivery(
                        item.id, item.message_id, event, item.sequence, item.endpoint_sequence, number, item.created_at
                    )
                )
            except Exception as exc:  # a fault in the sink must not end this consumer: recorded, retried
                log.exception("delivery %d: the %s sink failed unexpectedly", item.id, endpoint.name)
                result = Result(Verdict.RETRY, error=redacted_urls(f"{type(exc).__name__}: {exc}"))
        latency = time.perf_counter() - started
        attempt = AttemptRecord(
            number, at, result.status, latency, _storable(result.response), _storable(result.error[:1024])
        )
        verdict = result.verdict
        if verdict is Verdict.DELIVERED:
            ATTEMPTS_DELIVERED.inc()
            DELIVERED.inc()
            LATENCY.observe(max(0.0, time.time() - item.created_at))
            self.endpoints.note(endpoint, True)
            return Outcome(item, "delivered", attempt)
        if verdict is Verdict.GONE:
            ATTEMPTS.labels("gone", _status_class(result.status)).inc()
            self.endpoints.mark_gone(endpoint)
            self.endpoints.note(endpoint, False, result.error)
            return Outcome(item, "release", attempt)
        reason = result.error or f"HTTP {result.status}"
        if verdict is Verdict.DEAD:
            ATTEMPTS.labels("dead", _status_class(result.status)).inc()
            DEAD.inc()
            log.error("delivery %d to %s can never succeed (%s): marked dead", item.id, endpoint.name, reason)
            return Outcome(item, "dead", attempt)
        ATTEMPTS.labels("failed", _status_class(result.status)).inc()
        self.endpoints.note(endpoint, False, reason)
        delay = (endpoint.retry or self.policy).delay(item.failures + 1, result.retry_after)
        if delay is None:
            DEAD.inc()
            log.warning("delivery %d to %s is dead after %d attempts (%s)", item.id, endpoint.name, number, reason)
            return Outcome(item, "dead", attempt)
        RETRIES.inc()
        log.info("delivery %d to %s failed (%s); next attempt in %.1fs", item.id, endpoint.name, reason, delay)
        return Outcome(item, "retry", attempt, time.time() + delay)
