"""Analytics jobs in the shared store: one row per leg (call id), with the backend's progress.

A job is `queued` (due at `next_at`), `done` (result kept) or `failed` (error kept); a queued job
a process is working on holds a lease (reported as `running`). The rows are a platform JobQueue
(`queue`): every change of a claimed job is made only while its lease is this process's own.
`published` turns 1 once the dispatcher acknowledged the final event. `progress` is the
backend's JSON state (e.g. Yandex operation ids), saved before anything that could not be
repeated safely. `audio` names the leg's files in media (`file` 1, 2, …), never a URL.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tcxhooks.platform.jobqueue import JobQueue, JobTable
from tcxhooks.platform.store import Migration, Store
from tcxhooks.v1 import events_pb2

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)

MIGRATIONS = [
    Migration(
        1,
        """
CREATE TABLE analytics_jobs (
  call_id TEXT PRIMARY KEY,
  chain TEXT NOT NULL,
  audio TEXT NOT NULL,
  backend TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  progress TEXT NOT NULL DEFAULT '{}',
  result TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  next_at DOUBLE PRECISION NOT NULL,
  owner TEXT NOT NULL DEFAULT '',
  lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
  published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX analytics_jobs_due ON analytics_jobs (state, next_at);
CREATE INDEX analytics_jobs_unpublished ON analytics_jobs (published, state)
""",
    ),
    Migration(
        2,
        """
ALTER TABLE analytics_jobs RENAME COLUMN owner TO lease_owner;
UPDATE analytics_jobs SET state = 'queued', lease_owner = '', lease_until = 0 WHERE state = 'running'
""",
    ),
]
TABLE = JobTable("analytics_jobs", key="call_id", runnable=(QUEUED,))

_COLUMNS = (
    "call_id, chain, audio, backend, state, attempts, error, progress, result, created_at, next_at, published,"
    " lease_until"
)


@dataclass
class AudioRef:
    file: int  # the leg's file number in media (MediaService.FetchAudio)
    duration: float = 0.0
    channels: int = 0

    @classmethod
    def from_json(cls, index: int, value: dict[str, Any]) -> AudioRef:
        """A stored reference; jobs submitted with links name the files 1, 2, … in their order."""
        return cls(
            int(value.get("file") or index + 1), float(value.get("duration", 0.0)), int(value.get("channels", 0))
        )


@dataclass
class Job:
    call_id: str
    chain: str
    audio: list[AudioRef]
    backend: str
    state: str
    attempts: int = 0
    error: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    result: events_pb2.AnalyticsReady | None = None
    created_at: float = 0.0
    next_at: float = 0.0
    published: bool = False
    leased_until: float = 0.0

    @property
    def running(self) -> bool:
        return self.state == QUEUED and self.leased_until > time.time()

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Job:
        (
            call_id,
            chain,
            audio,
            backend,
            state,
            attempts,
            error,
            progress,
            result,
            created_at,
            next_at,
            published,
            lease_until,
        ) = row
        ready = None
        if result:
            ready = events_pb2.AnalyticsReady()
            ready.ParseFromString(base64.b64decode(result))
        return cls(
            call_id,
            chain,
            [AudioRef.from_json(i, a) for i, a in enumerate(json.loads(audio))],
            backend,
            state,
            int(attempts),
            error,
            json.loads(progress),
            ready,
            float(created_at),
            float(next_at),
            bool(published),
            float(lease_until),
        )


class JobStore:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.queue = JobQueue(store, TABLE, owner)

    async def migrate(self) -> None:
        await self.store.migrate("analytics", MIGRATIONS)

    async def submit(self, call_id: str, chain: str, audio: list[AudioRef], backend: str) -> bool:
        """Stores a new queued job; False when the call id already has one (idempotent)."""
        now = time.time()
        payload = json.dumps([vars(a) for a in audio])
        count = await self.store.execute(
            "INSERT INTO analytics_jobs (call_id, chain, audio, backend, state, created_at, updated_at, next_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
            (call_id, chain, payload, backend, QUEUED, now, now, now),
        )
        return bool(count == 1)

    async def get(self, call_id: str) -> Job | None:
        row = await self.store.fetchone(f"SELECT {_COLUMNS} FROM analytics_jobs WHERE call_id = ?", (call_id,))
        return Job.from_row(row) if row else None

    async def claim(self, limit: int, lease: float) -> list[Job]:
        """Due queued jobs, leased to this process."""
        return [Job.from_row(row) for row in await self.queue.claim(limit, lease, _COLUMNS)]

    async def save_progress(self, job: Job) -> None:
        await self.queue.update(job.call_id, progress=json.dumps(job.progress), updated_at=time.time())

    async def reschedule(self, job: Job, next_at: float, attempts: int, error: str = "") -> None:
        """Back to the queue, due at `next_at` (the lease given back)."""
        job.attempts, job.error, job.next_at = attempts, error, next_at
        await self.queue.update(
            job.call_id,
            release=True,
            state=QUEUED,
            next_at=next_at,
            attempts=attempts,
            error=error,
            progress=json.dumps(job.progress),
            updated_at=time.time(),
        )

    async def finish(self, job: Job, result: events_pb2.AnalyticsReady) -> None:
        job.state, job.result = DONE, result
        await self.queue.update(
            job.call_id,
            release=True,
            state=DONE,
            result=base64.b64encode(result.SerializeToString()).decode(),
            error="",
            progress=json.dumps(job.progress),
            updated_at=time.time(),
        )

    async def fail(self, job: Job, error: str, attempts: int) -> None:
        job.state, job.error, job.attempts = FAILED, error, attempts
        await self.queue.update(
            job.call_id,
            release=True,
            state=FAILED,
            error=error,
            attempts=attempts,
            progress=json.dumps(job.progress),
            updated_at=time.time(),
        )

    async def unpublished(self, limit: int = 50) -> list[Job]:
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM analytics_jobs WHERE published = 0 AND state IN (?, ?) ORDER BY updated_at LIMIT ?",
            (DONE, FAILED, limit),
        )
        return [Job.from_row(row) for row in rows]

    async def mark_published(self, call_id: str) -> None:
        await self.store.execute("UPDATE analytics_jobs SET published = 1 WHERE call_id = ?", (call_id,))

    async def purge(self, older_than: float) -> int:
        """Deletes finished, published jobs (their transcripts) last changed before `older_than`."""
        return int(
            await self.store.execute(
                "DELETE FROM analytics_jobs WHERE published = 1 AND state IN (?, ?) AND updated_at < ?",
                (DONE, FAILED, older_than),
            )
        )

    async def count_by_state(self) -> dict[str, int]:
        """Jobs per state; a queued job under a lease counts as running."""
        rows = await self.store.fetchall(
            "SELECT CASE WHEN state = ? AND lease_until > ? THEN ? ELSE state END AS shown, COUNT(*)"
            " FROM analytics_jobs GROUP BY shown",
            (QUEUED, time.time(), RUNNING),
        )
        counts = {state: 0 for state in STATES}
        counts.update({str(state): int(n) for state, n in rows})
        return counts
