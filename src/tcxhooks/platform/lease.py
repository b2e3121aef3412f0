"""A leadership lease in the store: one active holder per name, standbys take over when it lapses.

    lease = Lease(store, "monitor:pbx.example.com", owner=f"{hostname}:{pid}", ttl=5.0)
    await lease.acquire(stopping)      # waits while another holder renews
    app.spawn(lease.keep(stopping), "lease")   # renews every ttl/5; raises LeaseLost if taken over or too late

The holder renews every ttl/5; a holder that dies stops renewing and a standby gets the lease once
`ttl` has passed since the last renewal. A holder that cannot renew in time must stop acting at once:
`keep` raises LeaseLost when 4/5 of the ttl have passed since its last renewal began, so two holders never
act together unless the hosts' clocks differ by more than ttl/5. Between, a renewal may wait ~3/5 of the
ttl for a slow store (a COMMIT stalled in fsync on a busy disk) before the lease is given up.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from .store import Migration, Store
from .waiting import sleep_or_stop

log = logging.getLogger(__name__)

MIGRATIONS = [
    Migration(1, "CREATE TABLE IF NOT EXISTS platform_leases ("
                 " name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)"),
]


class LeaseLost(Exception):
    """Another holder has the lease (or it could not be renewed in time)."""


class Lease:
    """`clock` dates the expiry written to the store (this host's wall clock); `timer` measures how long a
    renewal has been waiting (monotonic). Tests inject both to move time without waiting for it."""

    def __init__(self, store: Store, name: str, owner: str, ttl: float, *,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.monotonic) -> None:
        self.store, self.name, self.owner, self.ttl = store, name, owner, ttl
        self.clock, self.timer = clock, timer
        self.held = False

    async def try_acquire(self) -> bool:
        """Takes or renews the lease if it is free, expired, or already ours."""
        now = self.clock()
        async with self.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO platform_leases (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE platform_leases.owner = excluded.owner OR platform_leases.expires_at < ?",
                (self.name, self.owner, now + self.ttl, now))
            row = await tx.fetchone("SELECT owner FROM platform_leases WHERE name = ?", (self.name,))
        self.held = row is not None and row[0] == self.owner
        return self.held

    async def holder(self) -> str | None:
        row = await self.store.fetchone("SELECT owner, expires_at FROM platform_leases WHERE name = ?", (self.name,))
        return str(row[0]) if row and float(row[1]) >= self.clock() else None

    async def acquire(self, stopping: asyncio.Event) -> bool:
        """Waits until the lease is ours (True) or `stopping` is set (False)."""
        await self.store.migrate("platform_lease", MIGRATIONS)
        announced = False
        while not stopping.is_set():
            if await self.try_acquire():
                log.info("lease %s acquired by %s", self.name, self.owner)
                return True
            if not announced:
                log.info("lease %s is held by %s; standing by", self.name, await self.holder())
                announced = True
            await sleep_or_stop(self.ttl / 3, stopping)
        return False

    async def keep(self, stopping: asyncio.Event) -> None:
        """Renews until `stopping`; raises LeaseLost when the lease cannot be kept."""
        deadline = self.timer() + self.ttl * 4 / 5  # acquire() has just renewed
        while not stopping.is_set():
            if await sleep_or_stop(self.ttl / 5, stopping):
                break
            began = self.timer()
            try:
                ok = await asyncio.wait_for(self.try_acquire(), max(deadline - began, 0.0))
            except asyncio.TimeoutError:
                log.warning("lease %s renewal: no answer from the store within %.1f s", self.name, self.timer() - began)
                ok = None
            except Exception as exc:  # store unreachable: keep trying until the deadline
                log.warning("lease %s renewal failed: %s", self.name, exc)
                ok = None
            if ok:
                deadline = began + self.ttl * 4 / 5
            elif ok is False or self.timer() >= deadline:
                self.held = False
                raise LeaseLost(f"lease {self.name} lost by {self.owner}")
        await self.release()

    async def release(self) -> None:
        if self.held:
            await self.store.execute("DELETE FROM platform_leases WHERE name = ? AND owner = ?", (self.name, self.owner))
            self.held = False
