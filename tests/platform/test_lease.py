"""The leadership lease on both stores: one holder, takeover after expiry, release on stop."""
from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from tcxhooks.platform.lease import Lease, LeaseLost
from tcxhooks.platform.store import Store, open_store


async def test_one_holder_then_takeover_after_expiry(store: Store) -> None:
    name = f"monitor:{uuid.uuid4()}"
    stopping = asyncio.Event()
    active = Lease(store, name, "active", ttl=2.0)
    standby = Lease(store, name, "standby", ttl=2.0)
    assert await active.acquire(stopping)
    assert not await standby.try_acquire()
    assert await standby.holder() == "active"
    # The active holder dies (stops renewing): the standby gets the lease once it lapses.
    waiting = asyncio.create_task(standby.acquire(stopping))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    assert await asyncio.wait_for(waiting, 6)
    assert await standby.holder() == "standby"
    # The old holder, coming back, finds it taken and must stop acting.
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(active.keep(stopping), 6)


async def test_keep_renews_and_release_frees(store: Store) -> None:
    name = f"monitor:{uuid.uuid4()}"
    stopping = asyncio.Event()
    # A ttl a busy machine's store stalls cannot eat: a renewal may wait 1.8 s of it.
    holder = Lease(store, name, "a", ttl=3.0)
    other = Lease(store, name, "b", ttl=3.0)
    assert await holder.acquire(stopping)
    keeper = asyncio.create_task(holder.keep(stopping))
    await asyncio.sleep(4.5)  # half a ttl past its end: renewals kept it
    assert not await other.try_acquire()
    stopping.set()
    await asyncio.wait_for(keeper, 3)
    assert await other.try_acquire()  # released on a clean stop: no wait for expiry


async def test_a_stalled_store_delays_renewal_but_the_holder_stops_before_its_lease_lapses(tmp_path: Path) -> None:
    """A writer elsewhere holds SQLite's write lock (as a COMMIT stuck in fsync would): a short stall costs
    nothing; a long one ends the holder's lease while it is still its own, so no standby acts beside it."""
    path = tmp_path / "lease.db"
    store = await open_store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        stopping = asyncio.Event()
        holder = Lease(store, "monitor:pbx", "a", ttl=3.0)
        assert await holder.acquire(stopping)
        keeper = asyncio.create_task(holder.keep(stopping))
        other.execute("BEGIN IMMEDIATE")  # 2 s, under the ~2.4 s a renewal may wait
        await asyncio.sleep(2.0)
        other.execute("ROLLBACK")
        await asyncio.sleep(1.0)
        assert not keeper.done()
        other.execute("BEGIN IMMEDIATE")  # for good
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(keeper, 5)
        assert time.time() < other.execute("SELECT expires_at FROM platform_leases").fetchone()[0]
        other.execute("ROLLBACK")
        assert await store.fetchone("SELECT owner FROM platform_leases") == ("a",)  # the store is usable again
    finally:
        other.close()
        await store.close()
