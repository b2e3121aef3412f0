"""Transactions written as generators (`Store.run`) on both stores: results, atomicity, rollback, commits that
are not durable."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tcxhooks.platform import sqlite
from tcxhooks.platform.store import Store, Work, execute, executemany, fetchall, fetchone, open_store


@pytest.fixture
async def table(store: Store) -> AsyncIterator[str]:
    name = f"run_test_{uuid.uuid4().hex[:8]}"
    await store.execute(f"CREATE TABLE {name} (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    yield name
    await store.execute(f"DROP TABLE {name}")


def _fill(table: str, values: dict[str, int]) -> Work[int]:
    yield executemany(f"INSERT INTO {table} (k, v) VALUES (?, ?)", sorted(values.items()))
    changed = yield execute(f"UPDATE {table} SET v = v + 1 WHERE v >= ?", (2,))
    return int(changed)


def _read(table: str) -> Work[tuple[dict[str, int], int]]:
    rows = yield fetchall(f"SELECT k, v FROM {table} ORDER BY k")
    (count,) = yield fetchone(f"SELECT COUNT(*) FROM {table}")
    return {str(k): int(v) for k, v in rows}, int(count)


def _fill_then_fail(table: str) -> Work[None]:
    yield execute(f"INSERT INTO {table} (k, v) VALUES (?, ?)", ("z", 26))
    yield execute(f"INSERT INTO {table} (k, v) VALUES (?, ?)", ("a", 0))  # duplicate key


async def test_run_returns_what_the_work_returns(store: Store, table: str) -> None:
    assert await store.run(_fill(table, {"a": 1, "b": 2, "c": 3})) == 2
    assert await store.run(_read(table)) == ({"a": 1, "b": 3, "c": 4}, 3)


async def test_a_failing_statement_rolls_the_whole_work_back(store: Store, table: str) -> None:
    await store.run(_fill(table, {"a": 1}))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await store.run(_fill_then_fail(table))
    assert await store.run(_read(table)) == ({"a": 1}, 1)


async def test_an_exception_in_the_work_itself_rolls_back(store: Store, table: str) -> None:
    def broken() -> Work[None]:
        yield execute(f"INSERT INTO {table} (k, v) VALUES (?, ?)", ("x", 1))
        raise ValueError("computed something wrong")

    with pytest.raises(ValueError, match="computed something wrong"):
        await store.run(broken())
    assert await store.run(_read(table)) == ({}, 0)


async def test_a_transaction_cancelled_while_waiting_for_the_write_lock_leaves_none_open(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock; a caller gives up waiting (a timeout). Once the lock is free,
    the store's connection must not sit in the transaction the abandoned BEGIN opened, holding the lock."""
    path = tmp_path / "shared.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        await store.execute("CREATE TABLE shared (k TEXT PRIMARY KEY)")
        other = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async with store.transaction() as tx:
                    await tx.execute("INSERT INTO shared (k) VALUES ('never')")
        other.execute("ROLLBACK")
        await asyncio.sleep(0.5)  # the store's BEGIN gets the lock now, if it is still waiting
        other.execute("INSERT INTO shared (k) VALUES ('other')")  # "database is locked" if it kept it
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO shared (k) VALUES ('store')")
        other.close()
        assert sorted(r[0] for r in await store.fetchall("SELECT k FROM shared")) == ["other", "store"]
    finally:
        await store.close()


async def test_a_commit_that_is_not_durable_leaves_the_next_ones_durable(store: Store, table: str) -> None:
    assert await store.run(_fill(table, {"a": 1, "b": 2}), durable=False) == 1
    assert await store.run(_read(table)) == ({"a": 1, "b": 3}, 2)
    await store.sync()
    if store.dialect == "postgres":
        assert await store.fetchone("SHOW synchronous_commit") == ("on",)


async def test_a_durable_sqlite_commit_has_fsynced_the_wal_when_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite itself syncs only at a checkpoint (synchronous=NORMAL): each durable commit is the store's fsync."""
    synced: list[str] = []
    fsync = os.fsync

    def noting(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", noting)
    store = await open_store(f"sqlite:///{tmp_path / 's.db'}")
    wal = str(tmp_path / "s.db-wal")
    try:
        await store.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        assert synced == [wal]
        await store.run(_fill("t", {"a": 1}), durable=False)
        assert synced == [wal]
        await store.run(_fill("t", {"b": 2}))
        assert synced == [wal, wal]
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO t (k, v) VALUES ('c', 3)")
        assert synced == [wal] * 3
        assert (await store.run(_read("t")))[1] == 3
        assert len(await store.fetchall("SELECT k FROM t")) == 3
        assert synced == [wal] * 3  # a read needs no fsync
        await asyncio.gather(*(store.sync() for _ in range(5)))  # callers waiting together share an fsync
        assert synced == [wal] * 4
    finally:
        await store.close()


_COMMIT_THEN_WAIT = """
import asyncio, sys
from tcxhooks.platform.store import execute, open_store

async def main():
    store = await open_store(sys.argv[1])
    await store.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    def work():
        yield execute("INSERT INTO t (k) VALUES ('kept')")
    await store.run(work(), durable=False)
    print("committed", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_commit_that_is_not_durable_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _COMMIT_THEN_WAIT, f"sqlite:///{path}"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    with child.stdout:
        try:
            assert child.stdout.readline().strip() == "committed"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT k FROM t").fetchall() == [("kept",)]
    finally:
        conn.close()


async def test_a_run_while_another_process_writes_waits_for_it_off_the_event_loop(tmp_path: Path) -> None:
    """A transaction normally runs on the event loop; when another connection holds SQLite's write lock it waits
    in the store's thread, and the loop goes on meanwhile."""
    path = tmp_path / "shared.db"
    store = await open_store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (k, v) VALUES ('other', 1)")
        waiting = asyncio.ensure_future(store.run(_fill("t", {"store": 2})))
        ticks = 0
        for _ in range(20):  # the loop runs on while the store waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not waiting.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(waiting, 10) == 1
        assert await store.run(_read("t")) == ({"other": 1, "store": 3}, 2)
    finally:
        other.close()
        await store.close()


def _where(table: str) -> Work[int]:
    """Writes a row, and returns the thread the work ran in."""
    yield execute(f"INSERT INTO {table} (k, v) VALUES (?, ?)", (uuid.uuid4().hex, 1))
    return threading.get_ident()


async def test_a_run_beside_the_loop_runs_in_the_stores_thread(store: Store, table: str) -> None:
    """SQLite runs a transaction on the event loop when it can, and in its own thread when asked (the
    dispatcher's delivery cycles); Postgres waits on the network either way."""
    loop_thread = threading.get_ident()
    on_loop = await store.run(_where(table))
    beside = await store.run(_where(table), durable=False, beside_loop=True)
    if store.dialect == "sqlite":
        assert on_loop == loop_thread and beside != loop_thread
    assert await store.fetchone(f"SELECT COUNT(*) FROM {table}") == (2,)  # both committed


def _in_main_file(path: Path) -> list[tuple[object, ...]]:
    """The rows of t as the database file holds them, without the WAL."""
    main_file_only = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return main_file_only.execute("SELECT k FROM t").fetchall()
    except sqlite3.OperationalError:  # no table there yet
        return []
    finally:
        main_file_only.close()


async def test_commits_are_checkpointed_into_the_database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's connection never checkpoints on commit (that would wait for the disk on the event loop):
    its sync thread does, so the WAL does not grow without end."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 0.0)
    path = tmp_path / "c.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        await store.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        await store.run(_fill("t", {"a": 1}), durable=False)
        for _ in range(500):
            if _in_main_file(path) == [("a",)]:
                break
            await asyncio.sleep(0.01)
        assert _in_main_file(path) == [("a",)]
    finally:
        await store.close()
