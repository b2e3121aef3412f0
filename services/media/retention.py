"""Retention: recordings live `retention_days`; a nightly purge at `purge_at` deletes the expired ones.

    retention = Retention(jobs, storage)
    purged = await retention.purge(now=time.time())     # Purge RPC passes its own `now`
    app.spawn(retention.nightly(config.purge_at, app.stopping), "purge")

A purge only ever touches legs whose expiry is at or before `now`. Per leg it deletes the
objects first and then the records, so a purge that stops halfway (crash, S3 down) leaves
every unfinished leg as it was and the next run finishes it. S3 buckets also carry a
lifecycle rule (retention + 1 day) as a second line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from tcxhooks.platform.waiting import sleep_or_stop

from . import metrics
from .errors import StorageError
from .jobstore import JobStore
from .storage import Storage

log = logging.getLogger(__name__)

BATCH = 200


def next_run(at: dt.time, now: dt.datetime) -> dt.datetime:
    """The next local `at` strictly after `now` (a naive local datetime)."""
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + dt.timedelta(days=1)


class Retention:
    def __init__(self, jobs: JobStore, storage: Storage) -> None:
        self.jobs = jobs
        self.storage = storage
        self._lock = asyncio.Lock()

    async def purge(self, now: float | None = None) -> int:
        """Deletes every recording whose retention ended at or before `now`; returns how many legs."""
        now = time.time() if now is None else now
        purged = 0
        async with self._lock:
            try:
                while True:
                    call_ids = await self.jobs.expired(now, BATCH)
                    if not call_ids:
                        break
                    for call_id in call_ids:
                        for stored in await self.jobs.files(call_id):
                            await self.storage.delete(stored.object_key)
                        if await self.jobs.mark_purged(call_id, now):
                            purged += 1
                            metrics.PURGED.inc()
            except StorageError as exc:
                metrics.PURGE_RUNS.labels("failed").inc()
                log.error("purge stopped after %d recording(s): %s; the rest is purged next time", purged, exc)
                raise
        metrics.PURGE_RUNS.labels("ok").inc()
        if purged:
            log.info("purged %d expired recording(s)", purged)
        return purged

    async def nightly(self, at: dt.time, stopping: asyncio.Event) -> None:
        """Runs purge() every day at local time `at` until the service stops."""
        while not stopping.is_set():
            now = dt.datetime.now()
            wait = (next_run(at, now) - now).total_seconds()
            if await sleep_or_stop(wait, stopping):
                return
            try:
                await self.purge()
            except Exception as exc:  # logged and counted in purge(); the next night resumes
                log.warning("nightly purge incomplete: %s", exc)
