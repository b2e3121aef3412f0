"""A leadership lease in the store: one active holder per name, standbys take over when it lapses.

    lease = Lease(store, "monitor:pbx.example.com", owner=f"{hostname}:{pid}:{uuid}", ttl=5.0)
    await lease.acquire(stopping)      # waits while another holder renews
    lease.fence                        # this holding's fencing number: 1, 2, … one more per new holder
    app.spawn(lease.keep(stopping), "lease")   # renews every ttl/5; raises LeaseLost if taken over or too late

Instants come from the store's clock, read in the transaction that takes or renews the lease (the
PostgreSQL server's, or for SQLite, one file on one host, that host's): the hosts' wall clocks never
meet, so their skew does not matter. The holder renews every ttl/5; a holder that dies stops renewing
and a standby gets the lease once `ttl` has passed (by the store's clock) since the last renewal. A
holder that cannot renew in time must stop acting at once: `keep` raises LeaseLost when 4/5 of the ttl
have passed, by its own monotonic timer, since its last renewal began, so two holders never act
together (a renewal is dated by the store after it began). Between, a renewal may wait ~3/5 of the ttl
for a slow store (a COMMIT stalled in fsync on a busy disk) before the lease is given up.

A holder that stalls past all that (a paused VM) may still have calls in flight when it wakes: the
fencing number, sent with what it publishes, lets the receiver refuse a holder older than one it has
already heard from (dispatcher_service.proto, Fence).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .store import Migration, Store, Tx
from .waiting import sleep_or_stop

log = logging.getLogger(__name__)

MIGRATIONS = [
    Migration(
        1,
        "CREATE TABLE IF NOT EXISTS platform_leases ("
        " name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
    ),
    # a released lease keeps its row (expired), so its fencing number never goes back
    Migration(2, "ALTER TABLE platform_leases ADD COLUMN fence BIGINT NOT NULL DEFAULT 0"),
]

# The store's time in seconds since the epoch, read inside a transaction
StoreClock = Callable[[Tx], Awaitable[float]]
_NOW = {
    "postgres": "SELECT EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}


def store_clock(store: Store) -> StoreClock:
    """The clock of `store`'s server (PostgreSQL), or of the host whose file it is (SQLite)."""
    sql = _NOW[store.dialect]

    async def now(tx: Tx) -> float:
        row = await tx.fetchone(sql)
        assert row is not None
        return float(row[0])

    return now


class LeaseLost(Exception):
    """Another holder has the lease (or it could not be renewed in time)."""


class Lease:
    """`clock` dates expiries (the store's, `store_clock`); `timer` measures how long a renewal has been
    waiting (this host's monotonic clock). Tests inject both to move time without waiting for it."""

    def __init__(
        self,
        store: Store,
        name: str,
        owner: str,
        ttl: float,
        *,
        clock: StoreClock | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.name, self.owner, self.ttl = store, name, owner, ttl
        self.clock, self.timer = clock or store_clock(store), timer
        self.held = False
        self.fence = 0

    async def try_acquire(self) -> bool:
        """Takes or renews the lease if it is free, expired, or already ours; a new holder's fencing number
        is one more than the last."""
        async with self.store.transaction() as tx:
            now = await self.clock(tx)
            await tx.execute(
                "INSERT INTO platform_leases (name, owner, expires_at, fence) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,"
                " fence = CASE WHEN platform_leases.owner = excluded.owner THEN platform_leases.fence"
                " ELSE platform_leases.fence + 1 END"
                " WHERE platform_leases.owner = excluded.owner OR platform_leases.expires_at < ?",
                (self.name, self.owner, now + self.ttl, now),
            )
            row = await tx.fetchone("SELECT owner, fence FROM platform_leases WHERE name = ?", (self.name,))
        self.held = row is not None and row[0] == self.owner
        if self.held:
            assert row is not None
            self.fence = int(row[1])
        return self.held

    async def holder(self) -> str | None:
        async with self.store.transaction() as tx:
            now = await self.clock(tx)
            row = await tx.fetchone("SELECT owner, expires_at FROM platform_leases WHERE name = ?", (self.name,))
        return str(row[0]) if row and float(row[1]) >= now else None

    async def acquire(self, stopping: asyncio.Event) -> bool:
        """Waits until the lease is ours (True) or `stopping` is set (False)."""
        await self.store.migrate("platform_lease", MIGRATIONS)
        announced = False
        while not stopping.is_set():
            if await self.try_acquire():
                log.info("lease %s acquired by %s (fence %d)", self.name, self.owner, self.fence)
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
            except TimeoutError:
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
        """Ends the holding at once (a standby need not wait for the expiry); the row and its fencing number
        stay."""
        if self.held:
            await self.store.execute(
                "UPDATE platform_leases SET expires_at = 0 WHERE name = ? AND owner = ?", (self.name, self.owner)
            )
            self.held = False
