"""The media tables in the shared store: recording jobs, their stored files, and settings.

A job row is written before RecordingsDue is acknowledged (idempotent on the leg's call id) and
moves pending → stored → done (or no_recording / failed); purged once retention is over.
The rows are a platform JobQueue (`queue`): workers claim due jobs with a lease in this process's
name, every change of a claimed job is made only while the lease is still its own, and a job left
by a killed process is picked up again.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass

from tcxhooks.platform.jobqueue import JobQueue, JobTable
from tcxhooks.platform.store import Migration, Store, Tx
from tcxhooks.v1 import media_service_pb2

PENDING, STORED, DONE, NO_RECORDING, FAILED, PURGED = "pending", "stored", "done", "no_recording", "failed", "purged"

MIGRATIONS = [
    Migration(
        1,
        """
CREATE TABLE media_jobs (
  call_id TEXT PRIMARY KEY,
  chain TEXT NOT NULL,
  request TEXT NOT NULL,
  state TEXT NOT NULL,
  published INTEGER NOT NULL DEFAULT 0,
  submitted INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
  expire_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX media_jobs_due ON media_jobs (state, next_attempt_at);
CREATE INDEX media_jobs_expire ON media_jobs (expire_at);
CREATE TABLE media_files (
  call_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  object_key TEXT NOT NULL,
  duration DOUBLE PRECISION NOT NULL,
  size BIGINT NOT NULL,
  channels INTEGER NOT NULL,
  PRIMARY KEY (call_id, idx)
);
CREATE TABLE media_settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
)
""",
    ),
    Migration(
        2,
        """
ALTER TABLE media_jobs RENAME COLUMN next_attempt_at TO next_at;
ALTER TABLE media_jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''
""",
    ),
]
TABLE = JobTable("media_jobs", key="call_id", runnable=(PENDING, STORED))


@dataclass(frozen=True)
class Job:
    call_id: str
    chain: str
    request: media_service_pb2.RecordingsDueRequest
    state: str
    published: bool
    submitted: bool
    attempts: int
    error: str
    created_at: float
    expire_at: float


@dataclass(frozen=True)
class StoredFile:
    idx: int
    object_key: str
    duration: float
    size: int
    channels: int


_JOB_COLUMNS = "call_id, chain, request, state, published, submitted, attempts, error, created_at, expire_at"


def _job(row: tuple[object, ...]) -> Job:
    request = media_service_pb2.RecordingsDueRequest.FromString(base64.b64decode(str(row[2])))
    return Job(
        str(row[0]),
        str(row[1]),
        request,
        str(row[3]),
        bool(row[4]),
        bool(row[5]),
        int(row[6]),  # type: ignore[call-overload]
        str(row[7]),
        float(row[8]),  # type: ignore[arg-type]
        float(row[9]),  # type: ignore[arg-type]
    )


class JobStore:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.queue = JobQueue(store, TABLE, owner)

    async def migrate(self) -> None:
        await self.store.migrate("media", MIGRATIONS)

    async def add(self, request: media_service_pb2.RecordingsDueRequest, chain: str) -> bool:
        """Stores a new job; False when one exists for this call id already (a repeat)."""
        now = time.time()
        encoded = base64.b64encode(request.SerializeToString()).decode()
        count = await self.store.execute(
            "INSERT INTO media_jobs (call_id, chain, request, state, created_at, next_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
            (request.leg.call_id, chain, encoded, PENDING, now, now, now),
        )
        return bool(count == 1)

    async def get(self, call_id: str) -> Job | None:
        row = await self.store.fetchone(f"SELECT {_JOB_COLUMNS} FROM media_jobs WHERE call_id = ?", (call_id,))
        return _job(row) if row else None

    async def files(self, call_id: str) -> list[StoredFile]:
        rows = await self.store.fetchall(
            "SELECT idx, object_key, duration, size, channels FROM media_files WHERE call_id = ? ORDER BY idx",
            (call_id,),
        )
        return [StoredFile(int(r[0]), str(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows]

    async def file(self, call_id: str, idx: int) -> tuple[str, StoredFile] | None:
        """(job state, file) of one stored file of a leg."""
        row = await self.store.fetchone(
            "SELECT j.state, f.idx, f.object_key, f.duration, f.size, f.channels FROM media_files f"
            " JOIN media_jobs j ON j.call_id = f.call_id WHERE f.call_id = ? AND f.idx = ?",
            (call_id, idx),
        )
        if row is None:
            return None
        return str(row[0]), StoredFile(int(row[1]), str(row[2]), float(row[3]), int(row[4]), int(row[5]))

    async def claim(self, limit: int, lease: float, running: set[str]) -> list[Job]:
        """Due jobs leased to this process (none of those it is `running` already)."""
        return [_job(row) for row in await self.queue.claim(limit, lease, _JOB_COLUMNS, exclude=running)]

    async def retry(self, job: Job, delay: float, error: str) -> None:
        """Gives the job back, due again in `delay` seconds."""
        now = time.time()
        await self.queue.update(
            job.call_id, release=True, attempts=job.attempts + 1, error=error[:500], next_at=now + delay, updated_at=now
        )

    async def save_files(self, call_id: str, files: list[StoredFile], expire_at: float) -> None:
        """Records the stored mp3s and moves the job to `stored`, in one transaction."""
        async with self.store.transaction() as tx:
            await self.queue.update(call_id, tx, state=STORED, expire_at=expire_at, error="", updated_at=time.time())
            await tx.execute("DELETE FROM media_files WHERE call_id = ?", (call_id,))
            await tx.executemany(
                "INSERT INTO media_files (call_id, idx, object_key, duration, size, channels) VALUES (?, ?, ?, ?, ?, ?)",
                [(call_id, f.idx, f.object_key, f.duration, f.size, f.channels) for f in files],
            )

    async def mark(self, call_id: str, tx: Tx | None = None, **values: object) -> None:
        """Sets columns of a job this process holds (state, published, submitted, error); a final state
        gives its lease back."""
        allowed = {"state", "published", "submitted", "error"}
        assert set(values) <= allowed, values
        final = values.get("state") in (DONE, NO_RECORDING, FAILED)
        await self.queue.update(call_id, tx, release=final, **values, updated_at=time.time())

    async def expired(self, now: float, limit: int) -> list[str]:
        """Call ids whose retention ended at or before `now` and whose objects are not purged yet."""
        rows = await self.store.fetchall(
            "SELECT call_id FROM media_jobs WHERE expire_at > 0 AND expire_at <= ? AND state IN (?, ?)"
            " ORDER BY expire_at LIMIT ?",
            (now, STORED, DONE, limit),
        )
        return [str(r[0]) for r in rows]

    async def mark_purged(self, call_id: str, now: float) -> bool:
        """Drops the leg's file records and marks it purged, only if its retention is really over."""
        async with self.store.transaction() as tx:
            count = await tx.execute(
                "UPDATE media_jobs SET state = ?, updated_at = ? WHERE call_id = ? AND expire_at > 0 AND expire_at <= ?",
                (PURGED, time.time(), call_id, now),
            )
            if count == 1:
                await tx.execute("DELETE FROM media_files WHERE call_id = ?", (call_id,))
            return bool(count == 1)

    async def link_key(self) -> bytes:
        """The links' HMAC key when `[recordings] link_secret` is empty: random, made once, kept in the store."""
        await self.store.execute(
            "INSERT INTO media_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            ("link_key", secrets.token_hex(32)),
        )
        key = await self.stored_link_key()
        assert key
        return key

    async def stored_link_key(self) -> bytes:
        """The generated key, if one was ever made (b"" otherwise)."""
        row = await self.store.fetchone("SELECT value FROM media_settings WHERE name = ?", ("link_key",))
        return bytes.fromhex(str(row[0])) if row else b""
