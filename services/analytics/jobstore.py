"""Analytics jobs in the shared store: one row per leg (call id), with the backend's progress.

A job is `queued` (due at `next_at`), `running` (claimed by `owner` until `lease_until`), `done`
(result kept) or `failed` (error kept); `published` turns 1 once the dispatcher acknowledged the
final event. `progress` is the backend's JSON state (e.g. Yandex operation ids), saved before
anything that could not be repeated safely.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tcxhooks.platform.store import Migration, Store
from tcxhooks.v1 import events_pb2

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)

MIGRATIONS = [
    Migration(1, """
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
"""),
]

_COLUMNS = "call_id, chain, audio, backend, state, attempts, error, progress, result, created_at, next_at, published"


@dataclass
class AudioRef:
    url: str
    duration: float = 0.0
    channels: int = 0


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

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> "Job":
        (call_id, chain, audio, backend, state, attempts, error, progress, result, created_at, next_at,
         published) = row
        ready = None
        if result:
            ready = events_pb2.AnalyticsReady()
            ready.ParseFromString(base64.b64decode(result))
        return cls(call_id, chain, [AudioRef(**a) for a in json.loads(audio)], backend, state, int(attempts),
                   error, json.loads(progress), ready, float(created_at), float(next_at), bool(published))


class JobStore:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner

    async def migrate(self) -> None:
        await self.store.migrate("analytics", MIGRATIONS)

    async def submit(self, call_id: str, chain: str, audio: list[AudioRef], backend: str) -> bool:
        """Stores a new queued job; False when the call id already has one (idempotent)."""
        now = time.time()
        payload = json.dumps([a.__dict__ for a in audio])
        count = await self.store.execute(
            "INSERT INTO analytics_jobs (call_id, chain, audio, backend, state, created_at, updated_at, next_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
            (call_id, chain, payload, backend, QUEUED, now, now, now))
        return bool(count == 1)

    async def get(self, call_id: str) -> Job | None:
        row = await self.store.fetchone(f"SELECT {_COLUMNS} FROM analytics_jobs WHERE call_id = ?", (call_id,))
        return Job.from_row(row) if row else None

    async def requeue_mine(self) -> int:
        """At start: jobs this replica was running when it stopped go back to the queue."""
        return int(await self.store.execute(
            "UPDATE analytics_jobs SET state = ?, next_at = ? WHERE state = ? AND owner = ?",
            (QUEUED, time.time(), RUNNING, self.owner)))

    async def claim(self, limit: int, lease: float) -> list[Job]:
        """Takes up to `limit` due jobs (queued and due, or running under an expired lease)."""
        now = time.time()
        rows = await self.store.fetchall(
            "SELECT call_id FROM analytics_jobs WHERE (state = ? AND next_at <= ?) OR (state = ? AND lease_until < ?)"
            " ORDER BY next_at LIMIT ?", (QUEUED, now, RUNNING, now, limit))
        claimed = []
        for (call_id,) in rows:
            async with self.store.transaction() as tx:
                count = await tx.execute(
                    "UPDATE analytics_jobs SET state = ?, owner = ?, lease_until = ?, updated_at = ?"
                    " WHERE call_id = ? AND ((state = ? AND next_at <= ?) OR (state = ? AND lease_until < ?))",
                    (RUNNING, self.owner, now + lease, now, call_id, QUEUED, now, RUNNING, now))
                if count == 1:
                    row = await tx.fetchone(f"SELECT {_COLUMNS} FROM analytics_jobs WHERE call_id = ?", (call_id,))
                    if row:
                        claimed.append(Job.from_row(row))
        return claimed

    async def next_due(self) -> float | None:
        row = await self.store.fetchone("SELECT MIN(next_at) FROM analytics_jobs WHERE state = ?", (QUEUED,))
        return float(row[0]) if row and row[0] is not None else None

    async def save_progress(self, job: Job) -> None:
        await self.store.execute(
            "UPDATE analytics_jobs SET progress = ?, updated_at = ? WHERE call_id = ?",
            (json.dumps(job.progress), time.time(), job.call_id))

    async def reschedule(self, job: Job, next_at: float, attempts: int, error: str = "") -> None:
        job.attempts, job.error, job.next_at = attempts, error, next_at
        await self.store.execute(
            "UPDATE analytics_jobs SET state = ?, next_at = ?, attempts = ?, error = ?, progress = ?, updated_at = ?"
            " WHERE call_id = ?",
            (QUEUED, next_at, attempts, error, json.dumps(job.progress), time.time(), job.call_id))

    async def finish(self, job: Job, result: events_pb2.AnalyticsReady) -> None:
        job.state, job.result = DONE, result
        await self.store.execute(
            "UPDATE analytics_jobs SET state = ?, result = ?, error = '', progress = ?, updated_at = ? WHERE call_id = ?",
            (DONE, base64.b64encode(result.SerializeToString()).decode(), json.dumps(job.progress), time.time(),
             job.call_id))

    async def fail(self, job: Job, error: str, attempts: int) -> None:
        job.state, job.error, job.attempts = FAILED, error, attempts
        await self.store.execute(
            "UPDATE analytics_jobs SET state = ?, error = ?, attempts = ?, progress = ?, updated_at = ? WHERE call_id = ?",
            (FAILED, error, attempts, json.dumps(job.progress), time.time(), job.call_id))

    async def unpublished(self, limit: int = 50) -> list[Job]:
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM analytics_jobs WHERE published = 0 AND state IN (?, ?) ORDER BY updated_at LIMIT ?",
            (DONE, FAILED, limit))
        return [Job.from_row(row) for row in rows]

    async def mark_published(self, call_id: str) -> None:
        await self.store.execute("UPDATE analytics_jobs SET published = 1 WHERE call_id = ?", (call_id,))

    async def purge(self, older_than: float) -> int:
        """Deletes finished, published jobs (their transcripts) last changed before `older_than`."""
        return int(await self.store.execute(
            "DELETE FROM analytics_jobs WHERE published = 1 AND state IN (?, ?) AND updated_at < ?",
            (DONE, FAILED, older_than)))

    async def count_by_state(self) -> dict[str, int]:
        rows = await self.store.fetchall("SELECT state, COUNT(*) FROM analytics_jobs GROUP BY state")
        counts = {state: 0 for state in STATES}
        counts.update({state: int(n) for state, n in rows})
        return counts
