"""A queue of jobs in a service's own table: leases with an owner, and one rule for taking them back.

    queue = JobQueue(store, JobTable("media_jobs", key="call_id", runnable=("pending", "stored")),
                     owner=process_owner(replica_name(config.services.media)))
    await queue.take_back()                          # at start: leases of this replica's earlier processes
    for row in await queue.claim(limit=8, lease=60, columns="call_id, request"):
        async with queue.holding(row[0], lease=60):  # renewed while the block runs
            await queue.update(row[0], state="done", release=True)

The table has the job's key and the columns `state`, `next_at` (due time, unix seconds),
`lease_owner` and `lease_until`. A job is claimable when its state is one of `runnable`, it is
due, and no lease runs on it. Claiming sets the lease to this process; every later write of the
job (`renew`, `update`, `release`) names the owner, so a process whose lease another one took over
(it stalled, or lost the store for longer than the lease) changes nothing: its writes raise
LeaseLost, and `holding` cancels the block as soon as a renewal finds the lease gone or cannot
renew it before it runs out. Two processes never run one job to completion together.

Taking leases back: a lease belongs to one process (`process_owner`: the replica's name plus a
random part). A replica (one host and service address) runs one process at a time, so at start
it takes back every lease held by its own earlier processes: they were killed. Other replicas'
leases run out (`lease` seconds after their last renewal) and are claimed then. On SQLite there
is one host and one replica per store, so its restarts take back every lease at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass

from .lease import LeaseLost
from .store import Row, Store, Tx

log = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
SAFE_PART = 4 / 5


@dataclass(frozen=True)
class JobTable:
    """Where the jobs live: table, key column, and the states a worker may claim."""

    table: str
    key: str
    runnable: tuple[str, ...]


def replica_name(address: str) -> str:
    """A replica of a service: this host and the service's gRPC address."""
    return f"{socket.gethostname()}/{address}"


def process_owner(replica: str) -> str:
    """The lease owner of this process: its replica and a part no other process shares."""
    return f"{replica}#{uuid.uuid4().hex[:12]}"


class JobQueue:
    def __init__(self, store: Store, table: JobTable, owner: str, clock: Callable[[], float] = time.time) -> None:
        if "#" not in owner:
            raise ValueError("owner must come from process_owner()")
        self.store, self.table, self.owner, self.clock = store, table, owner, clock
        self.replica = owner.rsplit("#", 1)[0] + "#"
        self._due = f"state IN ({', '.join('?' * len(table.runnable))}) AND next_at <= ? AND lease_until <= ?"

    async def take_back(self) -> int:
        """At start: frees the leases of this replica's earlier processes; returns how many."""
        t = self.table
        return int(
            await self.store.execute(
                f"UPDATE {t.table} SET lease_owner = '', lease_until = 0 WHERE lease_until > 0 AND "
                "substr(lease_owner, 1, ?) = ? AND lease_owner <> ?",
                (len(self.replica), self.replica, self.owner),
            )
        )

    async def claim(self, limit: int, lease: float, columns: str, exclude: Collection[str] = ()) -> list[Row]:
        """Leases up to `limit` due jobs (oldest due first) to this process; their `columns`."""
        if limit <= 0:
            return []
        t, now = self.table, self.clock()
        skip = f" AND {t.key} NOT IN ({', '.join('?' * len(exclude))})" if exclude else ""
        lock = " FOR UPDATE SKIP LOCKED" if self.store.dialect == "postgres" else ""
        return await self.store.fetchall(
            f"UPDATE {t.table} SET lease_owner = ?, lease_until = ? WHERE {t.key} IN ("
            f"SELECT {t.key} FROM {t.table} WHERE {self._due}{skip} ORDER BY next_at LIMIT ?{lock}) "
            f"AND {self._due} RETURNING {columns}",
            (self.owner, now + lease, *t.runnable, now, now, *exclude, limit, *t.runnable, now, now),
        )

    async def next_due(self) -> float | None:
        """When the next runnable job comes due (None: none waits)."""
        t = self.table
        row = await self.store.fetchone(
            f"SELECT MIN(next_at) FROM {t.table} WHERE state IN ({', '.join('?' * len(t.runnable))})", t.runnable
        )
        return float(row[0]) if row and row[0] is not None else None

    async def renew(self, key: str, lease: float) -> bool:
        """Extends this process's lease on `key`; False when it is no longer ours."""
        t = self.table
        return bool(
            await self.store.execute(
                f"UPDATE {t.table} SET lease_until = ? WHERE {t.key} = ? AND lease_owner = ?",
                (self.clock() + lease, key, self.owner),
            )
            == 1
        )

    async def release(self, key: str) -> None:
        """Gives the job back at once (shutdown): another process may claim it now."""
        t = self.table
        await self.store.execute(
            f"UPDATE {t.table} SET lease_owner = '', lease_until = 0 WHERE {t.key} = ? AND lease_owner = ?",
            (key, self.owner),
        )

    async def update(self, key: str, tx: Tx | None = None, release: bool = False, **columns: object) -> None:
        """Sets columns of a job this process holds (and frees its lease with `release`); LeaseLost
        when another process took it over."""
        t = self.table
        sets = [f"{name} = ?" for name in columns] + (["lease_owner = ''", "lease_until = 0"] if release else [])
        sql = f"UPDATE {t.table} SET {', '.join(sets)} WHERE {t.key} = ? AND lease_owner = ?"
        params = (*columns.values(), key, self.owner)
        count = await (tx.execute(sql, params) if tx is not None else self.store.execute(sql, params))
        if count != 1:
            raise LeaseLost(f"{t.table} {key}: another process holds it now")

    @contextlib.asynccontextmanager
    async def holding(self, key: str, lease: float) -> AsyncIterator[None]:
        """Runs the block while renewing the lease every lease/3; when the lease is lost (or cannot be
        renewed before it runs out), the block is cancelled and LeaseLost raised instead."""
        task = asyncio.current_task()
        assert task is not None
        lost: list[str] = []
        keeper = asyncio.create_task(self._keep(key, lease, task, lost), name=f"lease.{key}")
        try:
            yield
        except asyncio.CancelledError:
            if lost and task.uncancel() == 0:
                raise LeaseLost(f"{self.table.table} {key}: {lost[0]}") from None
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, key: str, lease: float, task: asyncio.Task[object], lost: list[str]) -> None:
        # Acting stops a fifth of the lease before another process may claim the job: a margin for
        # the time a renewal takes to reach the store (and for small clock differences).
        deadline = time.monotonic() + lease * SAFE_PART  # the claim has just set the lease
        while True:
            await asyncio.sleep(lease / RENEWALS_PER_LEASE)
            began = time.monotonic()
            try:
                ours: bool | None = await asyncio.wait_for(self.renew(key, lease), max(deadline - began, 0.0))
            except Exception as exc:  # the store is slow or away: keep trying until the deadline
                log.warning("lease of %s %s not renewed: %s", self.table.table, key, str(exc) or type(exc).__name__)
                ours = None
            if ours:
                deadline = began + lease * SAFE_PART
            elif ours is False or time.monotonic() >= deadline:
                lost.append("taken over by another process" if ours is False else "not renewed in time")
                task.cancel()
                return
