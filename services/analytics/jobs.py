"""The job runner: claims due jobs, advances each with the backend, retries, enforces the deadline.

At most `[analytics] concurrency` jobs run at once. A backend step that must wait (a Yandex
operation still running) gives its slot back and the job comes due again later. Retryable errors
(429/5xx/network) come back with exponential backoff; permanent ones, exhausted retries and the
overall `[analytics] deadline` fail the job, which the publisher then reports once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from tcxhooks.platform.lease import LeaseLost
from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import events_pb2

from .backend import Backend, Outcome, Wait
from .config import AnalyticsConfig
from .errors import AnalyticsError, transient
from .jobstore import Job, JobStore
from .metrics import FAILURES, JOB_SECONDS, JOBS, RETRIES, STORE_ERRORS
from .transcript import render_text, to_proto

log = logging.getLogger(__name__)

LEASE = 60.0  # renewed every 20 s while a step runs (platform.jobqueue)
PURGE_EVERY = 3600.0
MAX_BACKOFF = 300.0
IDLE_CHECK = 1.0
STORE_PAUSE = 2.0  # between tries while the store is away


def backoff(attempt: int, minimum: float = 0.0) -> float:
    """1.5 s, 2.25 s, 3.4 s … capped at 5 minutes, with jitter; never below `minimum`."""
    return max(minimum, min(MAX_BACKOFF, 1.5**attempt) * random.uniform(0.8, 1.2))


class Runner:
    def __init__(
        self, config: AnalyticsConfig, jobs: JobStore, backend: Backend, on_finished: asyncio.Event, retention: float
    ) -> None:
        self.config = config
        self.retention = retention
        self._purged_at = 0.0
        self.jobs = jobs
        self.backend = backend
        self.on_finished = on_finished
        self.wake = asyncio.Event()
        self.active: set[asyncio.Task[None]] = set()

    async def run(self, stopping: asyncio.Event) -> None:
        requeued = await self.jobs.queue.take_back()
        if requeued:
            log.info("resuming %d analytics job(s) interrupted by this replica's last stop", requeued)
        try:
            while not stopping.is_set():
                self.wake.clear()
                try:
                    await self._cycle()
                    await self._idle(stopping)
                except Exception as exc:  # the store is away (or broken): wait it out, never stop the service
                    log.warning(
                        "analytics job loop: store error, trying again in %.0f s: %s",
                        STORE_PAUSE,
                        str(exc) or type(exc).__name__,
                    )
                    STORE_ERRORS.inc()
                    await sleep_or_stop(STORE_PAUSE, stopping)
        finally:
            if self.active:
                await asyncio.gather(*self.active, return_exceptions=True)

    async def _cycle(self) -> None:
        """Claims what is due (up to the free slots) and starts it; keeps the gauges and the purge."""
        free = self.config.concurrency - len(self.active)
        if free > 0:
            for job in await self.jobs.claim(free, LEASE):
                task = asyncio.create_task(self._advance(job), name=f"analytics.job.{job.call_id}")
                self.active.add(task)
                task.add_done_callback(self._task_done)
        await self._update_gauges()
        await self._purge()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.active.discard(task)
        self.wake.set()
        if not task.cancelled() and task.exception() is not None:
            # e.g. the store went away while recording the outcome: the job stays claimed and is taken up
            # again after a restart (or by another replica once its lease ends)
            log.error("analytics job task failed: %s", task.exception(), exc_info=task.exception())

    async def _idle(self, stopping: asyncio.Event) -> None:
        due = await self.jobs.queue.next_due()
        timeout = IDLE_CHECK if due is None else max(0.05, min(IDLE_CHECK, due - time.time()))
        await sleep_or_stop(timeout, self.wake, stopping)

    async def _purge(self) -> None:
        """Transcripts are personal data: kept as long as the recordings (`[recordings] retention_days`)."""
        if time.time() - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = time.time()
        purged = await self.jobs.purge(time.time() - self.retention)
        if purged:
            log.info("purged %d analytics job(s) older than %.0f days", purged, self.retention / 86400)

    async def _update_gauges(self) -> None:
        for state, count in (await self.jobs.count_by_state()).items():
            JOBS.labels(state).set(count)

    async def _advance(self, job: Job) -> None:
        """One step of one job under its lease; a job another process took over is left to it."""
        try:
            async with self.jobs.queue.holding(job.call_id, LEASE):
                await self._step(job)
        except LeaseLost as exc:
            log.warning("analytics job stopped here: %s", exc, extra={"call_id": job.call_id})
        except asyncio.CancelledError:  # stopping: another process (or the next start) takes it at once
            with contextlib.suppress(Exception):
                await asyncio.shield(self.jobs.queue.release(job.call_id))
            raise

    async def _step(self, job: Job) -> None:
        """One step of one job, and what follows from its result."""
        deadline_at = job.created_at + self.config.deadline
        try:
            remaining = deadline_at - time.time()
            if remaining <= 0:
                raise self._deadline_error(job)
            try:
                result = await asyncio.wait_for(self.backend.step(job, lambda: self.jobs.save_progress(job)), remaining)
            except TimeoutError:
                raise self._deadline_error(job) from None
        except AnalyticsError as exc:
            await self._on_error(job, exc, deadline_at)
            return
        except (asyncio.CancelledError, LeaseLost):
            raise
        except Exception as exc:
            log.exception("analytics step crashed", extra={"call_id": job.call_id})
            await self._on_error(
                job, transient(f"internal error: {type(exc).__name__}: {exc}", "internal", max_attempts=3), deadline_at
            )
            return
        if isinstance(result, Wait):
            await self.jobs.reschedule(job, min(time.time() + result.seconds, deadline_at), job.attempts)
            return
        await self._succeed(job, result)

    def _deadline_error(self, job: Job) -> AnalyticsError:
        stage = job.progress.get("stage", "queued")
        return AnalyticsError(
            f"deadline of {self.config.deadline:g}s exceeded (last stage: {stage})", reason="deadline", retryable=False
        )

    async def _on_error(self, job: Job, exc: AnalyticsError, deadline_at: float) -> None:
        attempts = job.attempts + 1
        if exc.retryable and (exc.max_attempts == 0 or attempts < exc.max_attempts):
            next_at = time.time() + backoff(attempts, exc.delay)
            if next_at < deadline_at:
                RETRIES.labels(exc.reason).inc()
                log.warning(
                    "analytics step failed, retrying in %.1fs: %s",
                    next_at - time.time(),
                    exc,
                    extra={"call_id": job.call_id, "attempt": attempts},
                )
                await self.jobs.reschedule(job, next_at, attempts, str(exc))
                return
            message = f"{exc} (no time left before the {self.config.deadline:g}s deadline)"
        elif exc.retryable:
            message = f"{exc} (gave up after {attempts} attempts)"
        else:
            message = str(exc)
        FAILURES.labels(exc.reason).inc()
        JOB_SECONDS.labels(self.backend.name, "failed").observe(time.time() - job.created_at)
        log.error("analytics job failed: %s", message, extra={"call_id": job.call_id, "reason": exc.reason})
        await self.jobs.fail(job, message, attempts)
        self.on_finished.set()

    async def _succeed(self, job: Job, outcome: Outcome) -> None:
        result = events_pb2.AnalyticsReady(
            call_id=job.call_id,
            text=render_text(outcome.segments, self.config.channels),
            summary=outcome.summary,
            segments=to_proto(outcome.segments, self.config.channels),
            language=outcome.language,
            backend=self.backend.name,
        )
        JOB_SECONDS.labels(self.backend.name, "done").observe(time.time() - job.created_at)
        log.info("analytics job done: %d phrases", len(result.segments), extra={"call_id": job.call_id})
        await self.jobs.finish(job, result)
        self.on_finished.set()
