"""The leadership lease on both stores: one holder, takeover after expiry, release on stop, a fencing
number that grows with each new holder, the store's clock deciding expiry whatever the hosts' say.

Time is a hand-moved clock (the store's clock and the holder's renewal timer), so a busy machine cannot
make a lease lapse or survive: only the test moves time. The real sleeps between renewals stay short.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from tcxhooks.platform.lease import Lease, LeaseLost, store_clock
from tcxhooks.platform.store import Store, Tx, open_store

TTL = 0.5  # real seconds between renewals are ttl/5, between a standby's tries ttl/3


class Clock:
    """One hand-moved time standing for the store's clock (`store`) and the holder's timer (called)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    async def store(self, tx: Tx) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def lease(store: Store, name: str, owner: str, clock: Clock) -> Lease:
    return Lease(store, name, owner, ttl=TTL, clock=clock.store, timer=clock)


async def expiry(store: Store, name: str) -> float:
    row = await store.fetchone("SELECT expires_at FROM platform_leases WHERE name = ?", (name,))
    assert row is not None
    return float(row[0])


async def renewed(store: Store, name: str, clock: Clock) -> None:
    """Waits (bounded) until the holder has renewed at the clock's current time."""
    for _ in range(500):
        if await expiry(store, name) == clock() + TTL:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"lease {name} not renewed at {clock()}: expires at {await expiry(store, name)}")


async def test_one_holder_then_takeover_after_expiry(store: Store) -> None:
    name, clock, stopping = f"monitor:{uuid.uuid4()}", Clock(), asyncio.Event()
    active, standby = lease(store, name, "active", clock), lease(store, name, "standby", clock)
    assert await active.acquire(stopping)
    assert not await standby.try_acquire()
    assert await standby.holder() == "active"
    # The active holder dies (stops renewing): the standby gets the lease once it lapses, not before.
    waiting = asyncio.create_task(standby.acquire(stopping))
    clock.advance(TTL * 0.9)
    await asyncio.sleep(TTL)  # several tries of the standby, all refused
    assert not waiting.done()
    assert await standby.holder() == "active"
    clock.advance(TTL * 0.2)
    assert await asyncio.wait_for(waiting, 10)
    assert await standby.holder() == "standby"
    # The old holder, coming back, finds it taken and must stop acting.
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(active.keep(stopping), 10)


async def test_keep_renews_and_release_frees(store: Store) -> None:
    name, clock, stopping = f"monitor:{uuid.uuid4()}", Clock(), asyncio.Event()
    holder, other = lease(store, name, "a", clock), lease(store, name, "b", clock)
    assert await holder.acquire(stopping)
    keeper = asyncio.create_task(holder.keep(stopping))
    for _ in range(6):  # three ttls: without renewals the lease would have lapsed twice over
        clock.advance(TTL / 2)
        await renewed(store, name, clock)
        assert not await other.try_acquire()
    stopping.set()
    await asyncio.wait_for(keeper, 10)
    assert await other.try_acquire()  # released on a clean stop: no wait for expiry


async def test_a_stalled_store_delays_renewal_but_the_holder_stops_before_its_lease_lapses(tmp_path: Path) -> None:
    """A writer elsewhere holds SQLite's write lock (as a COMMIT stuck in fsync would): a stall shorter than
    4/5 of the ttl costs nothing; a longer one ends the holder's lease while it is still its own, so no
    standby acts beside it."""
    path = tmp_path / "lease.db"
    store = await open_store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, timeout=10)
    clock, stopping = Clock(), asyncio.Event()
    try:
        holder = lease(store, "monitor:pbx", "a", clock)
        assert await holder.acquire(stopping)
        keeper = asyncio.create_task(holder.keep(stopping))
        other.execute("BEGIN IMMEDIATE")
        clock.advance(TTL * 0.7)  # stalled for 7/10 of the ttl
        await asyncio.sleep(TTL)  # renewals tried, and stuck, meanwhile
        other.execute("ROLLBACK")
        await renewed(store, "monitor:pbx", clock)
        assert not keeper.done()

        other.execute("BEGIN IMMEDIATE")  # for good
        clock.advance(TTL * 0.81)
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(keeper, 10)
        assert clock() < other.execute("SELECT expires_at FROM platform_leases").fetchone()[0]
        other.execute("ROLLBACK")
        assert await store.fetchone("SELECT owner FROM platform_leases") == ("a",)  # the store is usable again
    finally:
        other.close()
        await store.close()


async def test_each_new_holder_gets_a_higher_fencing_number_and_a_release_keeps_it(store: Store) -> None:
    name, clock, stopping = f"monitor:{uuid.uuid4()}", Clock(), asyncio.Event()
    first, second = lease(store, name, "first", clock), lease(store, name, "second", clock)
    assert await first.acquire(stopping)
    taken = first.fence
    assert await first.try_acquire() and first.fence == taken  # renewals keep it
    clock.advance(TTL * 1.1)  # the first holder stopped renewing
    assert await second.try_acquire() and second.fence == taken + 1
    second.held = True
    await second.release()
    assert await first.try_acquire() and first.fence == taken + 2  # released, not forgotten


async def test_expiry_follows_the_store_clock_whatever_the_hosts_clocks_say(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two holders on hosts whose wall clocks are hours apart: the store dates every expiry, so the
    standby never sees the active one's lease as lapsed while it renews."""
    name, stopping = f"monitor:{uuid.uuid4()}", asyncio.Event()
    real = time.time
    active = Lease(store, name, "active", ttl=TTL)
    standby = Lease(store, name, "standby", ttl=TTL)
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # the active one's host runs an hour late
    assert await active.acquire(stopping)
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # the standby's an hour early
    assert not await standby.try_acquire()
    assert await standby.holder() == "active"
    async with store.transaction() as tx:
        now = await store_clock(store)(tx)
    assert now < await expiry(store, name) <= now + TTL
