"""Delivery: claims due deliveries from the outbox, POSTs them, records every attempt.

    worker = Worker(outbox, endpoints, RetryPolicy(schedule), lease_ttl=60, batch=256)
    app.spawn(worker.run(app.stopping), "worker")
    worker.adopt(claimed)    # deliveries a Publish claimed as it stored them
    worker.wake()            # after a Publish committed deliveries it did not claim

One loop talks to the store: each cycle commits the outcomes gathered since the last one and
claims new due deliveries in the same transaction (group commit). Each endpoint has
`concurrency` consumers taking claimed deliveries from its queue. On shutdown no new claims are
made, requests in flight finish, and deliveries not yet sent are released (never acknowledged).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Awaitable

from google.protobuf.message import DecodeError

from tcxhooks import __version__
from tcxhooks.v1 import events_pb2

from .endpoints import Endpoint, Endpoints
from .metrics import ATTEMPTS, ATTEMPTS_DELIVERED, DEAD, DELIVERED, LATENCY, RETRIES
from .outbox import AttemptRecord, Claimed, Outbox, Outcome
from .payloads import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, render
from .retry import RetryPolicy, parse_retry_after
from .transport import Reply, TransportError

log = logging.getLogger(__name__)
USER_AGENT = f"tcxhooks/{__version__}"
_STOP = object()
# Claimed-but-unfinished deliveries kept in memory per endpoint, in claim batches: enough that each
# cycle finds work queued while the previous batch is still on the wire.
HELD_BATCHES = 4
MAX_CYCLE_GAP = 0.01


def headers_for(endpoint: Endpoint, msg_id: str, sequence: int, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    headers = {
        "content-type": FORM_CONTENT_TYPE if endpoint.config.format == "form" else JSON_CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "x-tcxhooks-sequence": str(sequence),
    }
    if endpoint.signer:
        headers["webhook-signature"] = endpoint.signer.sign(msg_id, timestamp, body)
    return headers


def body_for(endpoint: Endpoint, event: events_pb2.Event) -> bytes:
    return render(event, endpoint.config.format)


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if status else "none"


class Worker:
    def __init__(self, outbox: Outbox, endpoints: Endpoints, policy: RetryPolicy, lease_ttl: float,
                 batch: int, poll: float = 0.5) -> None:
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
        consumers = [asyncio.create_task(self._consume(endpoint), name=f"deliver.{endpoint.name}")
                     for endpoint in self.endpoints for _ in range(endpoint.config.concurrency)]
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
                    await self._sleep(stopping)
                # Under load, let work gather between cycles: fewer, larger transactions. The pause
                # grows with the work the last cycle moved, so a lone event is never held back.
                # A full batch of outcomes ends the pause: the pause must not cap the rate.
                moved = min(1.0, (finished + len(claimed)) / self.batch)
                gap = MAX_CYCLE_GAP * moved - (time.monotonic() - started)
                if gap > 0 and len(self._done) < self.batch:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), gap)
        finally:
            self._closing = True
            for endpoint in self.endpoints:
                for _ in range(endpoint.config.concurrency):
                    endpoint.queue.put_nowait(_STOP)
            await asyncio.gather(*consumers, return_exceptions=True)
            await self._cycle(claim=False)
            await self.endpoints.flush()

    async def _sleep(self, stopping: asyncio.Event) -> None:
        stop = asyncio.ensure_future(stopping.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((stop, wake), timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

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
        return {name: min(self.batch, self.batch * HELD_BATCHES - self._held_by[name])
                for name in self.endpoints.enabled_names()}

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
        try:
            # validated before it was stored; a payload damaged since fails to parse or to render
            body = body_for(endpoint, events_pb2.Event.FromString(item.payload))
        except (DecodeError, KeyError, ValueError) as exc:
            log.error("delivery %d cannot be rendered (%s): marked dead", item.id, exc)
            DEAD.inc()
            return Outcome(item, "dead", AttemptRecord(number, at, 0, 0.0, "", f"cannot render: {exc}"))
        headers = headers_for(endpoint, f"msg_{item.id}", item.sequence, body)
        started = time.perf_counter()
        failure: TransportError | None = None
        try:
            reply: Reply | None = await endpoint.transport.post(endpoint.config.url, body, headers)
        except TransportError as exc:
            reply, failure = None, exc
        except Exception as exc:  # a fault in the HTTP client must not end this consumer: retried
            log.exception("delivery %d: the HTTP client failed unexpectedly", item.id)
            reply, failure = None, TransportError("client", f"{type(exc).__name__}: {exc}")
        latency = time.perf_counter() - started
        status = reply.status if reply is not None else 0
        # NUL cannot be stored in a Postgres TEXT column
        error = str(failure)[:1024].replace("\x00", "\ufffd") if failure is not None else ""
        snippet = reply.snippet.decode("utf-8", "replace").replace("\x00", "\ufffd") if reply is not None else ""
        attempt = AttemptRecord(number, at, status, latency, snippet, error)
        if 200 <= status < 300:
            ATTEMPTS_DELIVERED.inc()
            DELIVERED.inc()
            LATENCY.observe(max(0.0, time.time() - item.created_at))
            self.endpoints.note(endpoint, True)
            return Outcome(item, "delivered", attempt)
        if status == 410:
            ATTEMPTS.labels("gone", "4xx").inc()
            self.endpoints.mark_gone(endpoint)
            self.endpoints.note(endpoint, False, "410 Gone")
            return Outcome(item, "release", attempt)
        ATTEMPTS.labels("failed", _status_class(status)).inc()
        reason = error or f"HTTP {status}"
        self.endpoints.note(endpoint, False, reason)
        retry_after = parse_retry_after(reply.retry_after) if reply is not None and status in (429, 503) else None
        delay = self.policy.delay(item.failures + 1, retry_after)
        if delay is None:
            DEAD.inc()
            log.warning("delivery %d to %s is dead after %d attempts (%s)", item.id, endpoint.name, number, reason)
            return Outcome(item, "dead", attempt)
        RETRIES.inc()
        log.info("delivery %d to %s failed (%s); next attempt in %.1fs", item.id, endpoint.name, reason, delay)
        return Outcome(item, "retry", attempt, time.time() + delay)
