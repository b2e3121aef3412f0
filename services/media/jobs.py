"""The job loop: find a leg's wav files, transcode and store them, link and announce them.

    runner = Runner(jobs, source, transcoder, storage, links, publisher, config, analytics=False)
    app.spawn(runner.run(app.stopping), "jobs")
    runner.wake()                       # a new job was stored

Every step is recorded in the store before the next one starts (pending → stored → published →
submitted → done), so a job left by a killed process resumes where it was; storing is
idempotent (objects are named after their source file) and the event id is stable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tcxhooks.platform.lease import LeaseLost
from tcxhooks.platform.retry import Refused, backoff, until_acknowledged
from tcxhooks.platform.waiting import sleep_or_stop

from . import metrics
from .config import RecordingsConfig
from .errors import BadAudio, LegError, PeerRefused, TransientError
from .jobstore import DONE, FAILED, NO_RECORDING, PENDING, Job, JobStore, StoredFile
from .links import Links
from .publisher import Publisher, analytics_request, recording_event
from .sources import SLACK, Found, Source, Window
from .storage import Storage
from .transcode import Transcoder

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_SECONDS = 60.0
MAX_JOBS = 64  # legs handled at once (most of them just wait for late files)
MAX_SETTLE = 120.0  # after the grace window, stop waiting for files still being written
MAX_BACKOFF = 60.0
# A wav shorter than its header says is retried this many times (1 + 2 + 4 s apart), in case it
# was still being copied; then it is taken as it is.
SHORT_AUDIO_ATTEMPTS = 3
# An mp3 that decodes shorter than its wav is transcoded again this many times; then the file
# counts as unusable (never published cut).
INCOMPLETE_MP3_ATTEMPTS = 5
IDLE_POLL = 5.0  # new jobs and retries wake the loop; this catches other replicas' lapsed leases
LAST_FILE_TOLERANCE = 1.0  # a file ending this close to the hangup is the leg's last one


class Stopping(Exception):
    """The service stops before a peer acknowledged: the job keeps its state for the next start."""


def window_for(job: Job, grace: float) -> Window:
    """Files of the leg end between its answer and `grace` after its hangup (or after we heard of it)."""
    leg = job.request.leg
    end = leg.end_unix_ms / 1000 if leg.end_unix_ms else job.created_at
    base = min(end, job.created_at)
    start = leg.start_unix_ms / 1000 if leg.start_unix_ms else base - job.request.ended.duration_seconds
    return Window(start - SLACK, base + grace)


def object_key(call_id: str, ident: str) -> str:
    """A stable, readable object name per source file (a retried job overwrites, never duplicates)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", ident.rsplit("/", 1)[-1].removesuffix(".wav"))[:80].strip("._") or "rec"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:8]
    return f"{call_id}/{stem}-{digest}.mp3"


class Runner:
    def __init__(
        self,
        jobs: JobStore,
        source: Source,
        transcoder: Transcoder,
        storage: Storage,
        links: Links,
        publisher: Publisher,
        config: RecordingsConfig,
        analytics: bool,
    ) -> None:
        self.jobs, self.source, self.transcoder, self.storage = jobs, source, transcoder, storage
        self.links, self.publisher, self.config, self.analytics = links, publisher, config, analytics
        self._wake = asyncio.Event()
        self._active: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        try:
            while not stopping.is_set():
                self._wake.clear()
                free = MAX_JOBS - len(self._active)
                try:
                    claimed = await self.jobs.claim(free, LEASE_SECONDS, set(self._active))
                except Exception as exc:  # the store is down for a moment: try again shortly
                    log.warning("cannot claim recording jobs: %s", exc)
                    metrics.ERRORS.labels("store").inc()
                    claimed = []
                for job in claimed:
                    task = asyncio.create_task(self._run_job(job), name=f"media.job.{job.call_id}")
                    self._active[job.call_id] = task
                    task.add_done_callback(functools.partial(self._forget, job.call_id))
                await sleep_or_stop(IDLE_POLL, stopping, self._wake)
            if self._active:
                await asyncio.gather(*self._active.values(), return_exceptions=True)
        finally:
            tasks = list(self._active.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # each releases its lease

    def _forget(self, call_id: str, _task: asyncio.Task[None]) -> None:
        self._active.pop(call_id, None)

    async def _run_job(self, job: Job) -> None:
        metrics.JOBS_IN_FLIGHT.inc()
        settled = False
        try:
            async with self.jobs.queue.holding(job.call_id, LEASE_SECONDS):
                await self._settle(job)
            settled = True
        except LeaseLost as exc:  # another process runs it now: this one changes nothing more
            log.warning("recording job %s stopped here: %s", job.call_id, exc, extra={"call_id": job.call_id})
            metrics.ERRORS.labels("lease_lost").inc()
            settled = True
        except Stopping:
            log.info("recording job %s left for the next start", job.call_id, extra={"call_id": job.call_id})
        except Exception as exc:  # the store failed while recording the outcome: the lease expires, it runs again
            log.error("recording job %s: cannot record its state: %s", job.call_id, exc, extra={"call_id": job.call_id})
            metrics.ERRORS.labels("store").inc()
            settled = True
        finally:
            metrics.JOBS_IN_FLIGHT.dec()
            if not settled:  # stopping: let the next process take it at once
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.jobs.queue.release(job.call_id))

    async def _settle(self, job: Job) -> None:
        """Advances the job and records what came of it (a retry, a failure)."""
        try:
            await self._advance(job)
        except (LeaseLost, Stopping):
            raise
        except TransientError as exc:
            delay = backoff(job.attempts + 1, 1.0, MAX_BACKOFF)
            log.warning(
                "recording job %s: %s; retrying in %.0f s",
                job.call_id,
                exc,
                delay,
                extra={"call_id": job.call_id, "attempt": job.attempts + 1},
            )
            metrics.RETRIES.labels(job.state).inc()
            await self.jobs.retry(job, delay, str(exc))
            asyncio.get_running_loop().call_later(delay, self.wake)
        except (LegError, PeerRefused) as exc:
            log.error("recording job %s failed: %s", job.call_id, exc, extra={"call_id": job.call_id})
            metrics.JOBS.labels("failed").inc()
            await self.jobs.mark(job.call_id, state=FAILED, error=str(exc)[:500])
        except Exception as exc:
            log.exception(
                "recording job %s failed unexpectedly; retrying in a minute",
                job.call_id,
                extra={"call_id": job.call_id},
            )
            metrics.ERRORS.labels("internal").inc()
            await self.jobs.retry(job, MAX_BACKOFF, f"internal error: {exc}")
            asyncio.get_running_loop().call_later(MAX_BACKOFF, self.wake)

    async def _advance(self, job: Job) -> None:
        if job.state == PENDING:
            stored = await self._collect(job)
            if stored is None:
                return
            files, expire_at = stored
            await self.jobs.save_files(job.call_id, files, expire_at)
        else:
            files = await self.jobs.files(job.call_id)
            expire_at = job.expire_at
        urls = [self.links.url(job.call_id, f.idx, int(expire_at)) for f in files]
        if not job.published:
            event = recording_event(job, files, urls, self.config.full_info)
            reply = await self._hand_on(job, "dispatcher Publish", lambda: self.publisher.publish(event))
            await self.jobs.mark(job.call_id, published=1)
            log.info(
                "recording of %s published (%d file(s))%s",
                job.call_id,
                len(files),
                " again (the dispatcher had it)" if reply.duplicate else "",
                extra={"call_id": job.call_id},
            )
        if self.analytics and not job.submitted:
            request = analytics_request(job, files)
            await self._hand_on(job, "analytics Submit", lambda: self.publisher.submit(request))
            await self.jobs.mark(job.call_id, submitted=1)
        await self.jobs.mark(job.call_id, state=DONE, error="")
        metrics.JOBS.labels("done").inc()

    async def _hand_on(self, job: Job, what: str, send: Callable[[], Awaitable[T]]) -> T:
        """`send()`'s answer, retried until acknowledged; each failure is kept as the job's error."""

        async def note(problem: str) -> None:
            await self.jobs.mark(job.call_id, error=problem[:500])

        try:
            reply = await until_acknowledged(
                send,
                what,
                self._stopping,
                first=1.0,
                most=MAX_BACKOFF,
                on_failure=note,
                log_extra={"call_id": job.call_id},
            )
        except Refused as exc:
            raise PeerRefused(str(exc)) from None
        if reply is None:
            raise Stopping(what)
        return reply

    async def _collect(self, job: Job) -> tuple[list[StoredFile], float] | None:
        """Finds the leg's files until the grace window closes, converting each as soon as it is complete."""
        window = window_for(job, self.config.grace)
        leg_end = job.request.leg.end_unix_ms / 1000
        scanner = self.source.scanner(job.request.leg, window)
        tasks: dict[str, tuple[Found, asyncio.Task[tuple[str, int, float, int]]]] = {}
        try:
            while True:
                found, settled = await scanner.scan()
                for item in found:
                    if item.ident not in tasks:
                        tasks[item.ident] = (item, asyncio.create_task(self._convert(job, item)))
                now = time.time()
                has_last = leg_end > 0 and any(f.end >= leg_end - LAST_FILE_TOLERANCE for f, _ in tasks.values())
                if (settled and (has_last or now >= window.deadline)) or now >= window.deadline + MAX_SETTLE:
                    break
                wait = self.source.poll if now >= window.deadline else min(self.source.poll, window.deadline - now)
                await asyncio.sleep(max(wait, 0.02))
            results = await asyncio.gather(*(task for _, task in tasks.values()), return_exceptions=True)
        finally:
            for _, task in tasks.values():
                task.cancel()
        converted: list[tuple[Found, tuple[str, int, float, int]]] = []
        bad: list[str] = []
        for (item, _), result in zip(tasks.values(), results, strict=True):
            if isinstance(result, BadAudio):
                bad.append(f"{item.label}: {result}")
                log.error(
                    "recording %s of %s is unusable: %s (no link is sent for it)",
                    item.label,
                    job.call_id,
                    result,
                    extra={"call_id": job.call_id},
                )
                metrics.FILES.labels(result.outcome).inc()
                metrics.ERRORS.labels(result.outcome).inc()
            elif isinstance(result, BaseException):
                raise result
            else:
                converted.append((item, result))
        if not converted:
            if bad:
                await self.jobs.mark(job.call_id, state=FAILED, error="; ".join(bad)[:500])
                metrics.JOBS.labels("failed").inc()
            else:
                log.info("no recording found for %s", job.call_id, extra={"call_id": job.call_id})
                await self.jobs.mark(job.call_id, state=NO_RECORDING, error="")
                metrics.JOBS.labels("no_recording").inc()
            return None
        converted.sort(key=lambda pair: (pair[0].order, pair[0].ident))
        files = [
            StoredFile(idx, key, duration, size, channels)
            for idx, (_, (key, size, duration, channels)) in enumerate(converted, start=1)
        ]
        return files, time.time() + self.config.retention_days * 86400

    async def _convert(self, job: Job, item: Found) -> tuple[str, int, float, int]:
        """Transcodes and stores one file; (object key, size, duration, channels)."""
        key = object_key(job.call_id, item.ident)
        mp3 = await self.transcoder.to_mp3(
            item.open(),
            accept_short=job.attempts >= SHORT_AUDIO_ATTEMPTS,
            last_try=job.attempts >= INCOMPLETE_MP3_ATTEMPTS,
        )
        try:
            await self.storage.put(key, mp3.body, mp3.size, {"call-id": job.call_id, "leg": job.request.leg.dn or "-"})
        finally:
            mp3.close()
        if not mp3.complete:
            log.warning(
                "recording %s of %s still ends before the size its wav header declares after %d attempts: "
                "publishing the %.1f s there are",
                item.label,
                job.call_id,
                job.attempts,
                mp3.duration,
                extra={"call_id": job.call_id},
            )
        metrics.FILES.labels("ok" if mp3.complete else "short").inc()
        metrics.STORED_BYTES.inc(mp3.size)
        log.info(
            "stored %s of %s: %.1f s of audio, %d channel(s), %d bytes, transcoded in %.2f s",
            item.label,
            job.call_id,
            mp3.duration,
            mp3.channels,
            mp3.size,
            mp3.seconds,
            extra={"call_id": job.call_id},
        )
        return key, mp3.size, mp3.duration, mp3.channels
