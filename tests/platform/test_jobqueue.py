"""The job queue of media and analytics, on both stores: owner-checked leases, taking leases back at
start, and a stalled process that can no longer act on a job another process took over."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tcxhooks.platform.jobqueue import JobQueue, JobTable, process_owner
from tcxhooks.platform.lease import LeaseLost
from tcxhooks.platform.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def table(store: Store) -> AsyncIterator[JobTable]:
    name = f"jobs_test_{uuid.uuid4().hex[:8]}"
    await store.execute(
        f"CREATE TABLE {name} (id TEXT PRIMARY KEY, state TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',"
        " next_at DOUBLE PRECISION NOT NULL, lease_owner TEXT NOT NULL DEFAULT '',"
        " lease_until DOUBLE PRECISION NOT NULL DEFAULT 0)"
    )
    yield JobTable(name, key="id", runnable=("queued", "stored"))
    await store.execute(f"DROP TABLE {name}")


async def _add(store: Store, table: JobTable, *jobs: tuple[str, str, float]) -> None:
    for key, state, next_at in jobs:
        await store.execute(f"INSERT INTO {table.table} (id, state, next_at) VALUES (?, ?, ?)", (key, state, next_at))


async def _row(store: Store, table: JobTable, key: str) -> tuple[object, ...]:
    row = await store.fetchone(f"SELECT state, note, lease_owner FROM {table.table} WHERE id = ?", (key,))
    assert row is not None
    return tuple(row)


async def test_due_runnable_jobs_are_claimed_once_oldest_first(store: Store, table: JobTable) -> None:
    clock = Clock()
    await _add(
        store,
        table,
        ("late", "queued", clock.now + 60),
        ("b", "stored", clock.now - 5),
        ("a", "queued", clock.now - 10),
        ("done", "done", 0.0),
        ("c", "queued", clock.now),
    )
    one = JobQueue(store, table, process_owner("host/127.0.0.1:1"), clock)
    other = JobQueue(store, table, process_owner("host/127.0.0.1:2"), clock)
    assert [r[0] for r in await one.claim(2, lease=60, columns="id")] in (["a", "b"], ["b", "a"])
    assert [r[0] for r in await other.claim(10, lease=60, columns="id, state")] == ["c"]
    assert await one.claim(10, lease=60, columns="id") == []
    assert await one.claim(10, lease=60, columns="id", exclude=["late"]) == []
    assert await one.next_due() == clock.now - 10


async def test_a_stalled_process_cannot_act_on_a_job_another_process_took_over(store: Store, table: JobTable) -> None:
    clock = Clock()
    await _add(store, table, ("job", "queued", clock.now))
    stalled = JobQueue(store, table, process_owner("host-a/10.0.0.1:50053"), clock)
    taker = JobQueue(store, table, process_owner("host-b/10.0.0.2:50053"), clock)
    assert await stalled.claim(1, lease=60, columns="id") == [("job",)]
    assert await stalled.renew("job", 60)
    assert await taker.claim(1, lease=60, columns="id") == []  # the lease still runs
    clock.now += 61  # the stalled process did not renew
    assert await taker.claim(1, lease=60, columns="id") == [("job",)]
    assert not await stalled.renew("job", 60)
    with pytest.raises(LeaseLost):
        await stalled.update("job", state="done", note="from the stalled one")
    await stalled.release("job")  # refused silently: not its lease
    await taker.update("job", state="done", note="from the taker", release=True)
    assert await _row(store, table, "job") == ("done", "from the taker", "")


async def test_at_start_a_replica_takes_back_only_its_earlier_processes_leases(store: Store, table: JobTable) -> None:
    clock = Clock()
    await _add(store, table, ("mine", "queued", clock.now), ("theirs", "queued", clock.now))
    killed = JobQueue(store, table, process_owner("host-a/10.0.0.1:50053"), clock)
    other = JobQueue(store, table, process_owner("host-b/10.0.0.2:50053"), clock)
    assert await killed.claim(1, lease=60, columns="id") == [("mine",)]
    assert await other.claim(1, lease=60, columns="id") == [("theirs",)]
    restarted = JobQueue(store, table, process_owner("host-a/10.0.0.1:50053"), clock)
    assert await restarted.take_back() == 1
    assert await restarted.claim(5, lease=60, columns="id") == [("mine",)]
    assert await restarted.take_back() == 0  # never its own process's leases
    with pytest.raises(LeaseLost):
        await killed.update("mine", state="done")


async def test_holding_renews_and_cancels_the_work_once_the_lease_is_lost(store: Store, table: JobTable) -> None:
    clock = Clock()
    await _add(store, table, ("job", "queued", clock.now), ("kept", "queued", clock.now))
    mine = JobQueue(store, table, process_owner("host-a/x:1"), clock)
    assert len(await mine.claim(2, lease=0.3, columns="id")) == 2

    async with mine.holding("kept", lease=0.3):  # several renewals: the lease stays ours
        await asyncio.sleep(0.5)
    assert await _row(store, table, "kept") == ("queued", "", mine.owner)

    async def work() -> None:
        async with mine.holding("job", lease=0.3):
            clock.now += 3600  # the lease ran out: another process claims it
            assert await JobQueue(store, table, process_owner("host-b/y:1"), clock).claim(
                1, lease=60, columns="id", exclude=["kept"]
            ) == [("job",)]
            await asyncio.sleep(3600)  # cancelled at the next renewal

    with pytest.raises(LeaseLost, match="taken over"):
        await asyncio.wait_for(work(), 30)


def test_an_owner_must_name_its_process() -> None:
    with pytest.raises(ValueError):
        JobQueue(None, JobTable("t", "id", ("queued",)), owner="host/addr")  # type: ignore[arg-type]
