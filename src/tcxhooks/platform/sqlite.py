"""The SQLite store (one host): the API of store.py over one connection, in WAL mode.

Durability: `synchronous=NORMAL`, so a commit writes its WAL frames to the OS and gives up the write
lock without waiting for the disk; a durable commit then fsyncs the WAL file (`sync`) before it
returns, in a thread of its own, so neither this process's next transaction nor another process's
waits for the disk. A commit survives kill -9 as soon as it is done, a power cut once synced.

Where a transaction runs: `run` executes it on the event loop when SQLite's write lock is free at
once (BEGIN IMMEDIATE without waiting): a short transaction costs less than the two thread hops
around it. When another process holds the lock, it runs in the store's thread, which waits for the
lock there. `run(work, beside_loop=True)` always runs in the store's thread: for work the event loop
need not wait for, whose statements and commit then step beside the loop (sqlite3 gives up the GIL
while SQLite works), taking its time off a loop that is the limit (the dispatcher's delivery cycles:
docs/performance.md). Nothing on the loop waits for the disk: the connection never checkpoints on commit
(`wal_autocheckpoint=0`); the sync thread checkpoints at most once a second after commits, on a
connection of its own (a passive checkpoint: it never blocks a writer). `transaction()` (the
statement-by-statement form, for the cold paths) always runs in the store's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .store import (
    BaseStore,
    Params,
    Query,
    Row,
    StoreError,
    T,
    Tx,
    Work,
    execute,
    executemany,
    fetchall,
    fetchone,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_EVERY = 1.0  # seconds: at most one checkpoint this often, after commits


def _answer(conn: sqlite3.Connection, query: Query) -> Any:
    if query.op == "executemany":
        conn.executemany(query.sql, query.params)
        return None
    cursor = conn.execute(query.sql, query.params)
    if query.op == "fetchall":
        return cursor.fetchall()
    if query.op == "fetchone":
        return cursor.fetchone()
    return cursor.rowcount


def _drive(work: Work[T], answer: Callable[[Query], Any]) -> T:
    try:
        query = next(work)
        while True:
            query = work.send(answer(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _transact(conn: sqlite3.Connection, work: Work[T], begun: bool = False) -> tuple[T, bool]:
    """Runs `work` to COMMIT (BEGIN IMMEDIATE first unless `begun`); rolls back on any failure. Returns
    what the work returns and whether it wrote (a statement run for its effect, or rows changed)."""
    if not begun:
        conn.execute("BEGIN IMMEDIATE")
    before = conn.total_changes
    wrote = False

    def answer(query: Query) -> Any:
        nonlocal wrote
        wrote = wrote or query.op in ("execute", "executemany")
        return _answer(conn, query)

    try:
        result = _drive(work, answer)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves it open
            conn.execute("ROLLBACK")
        raise
    return result, wrote or conn.total_changes != before


def _begin_at_once(conn: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE if no other connection holds the write lock; False (nothing begun) if one does."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError:  # locked (or failing: the thread's attempt reports it)
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class _SqliteTx:
    def __init__(self, store: SqliteStore, conn: sqlite3.Connection) -> None:
        self._store, self._conn = store, conn
        self.wrote = False  # a statement ran for its effect (fetches that change rows show in total_changes)

    async def _ask(self, query: Query) -> Any:
        return await self._store._in_thread(lambda: _answer(self._conn, query))

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.wrote = True
        return int(await self._ask(execute(sql, params)))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self.wrote = True
        await self._ask(executemany(sql, rows))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._ask(fetchall(sql, params))  # sqlite3 rows are tuples already
        return rows

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._ask(fetchone(sql, params))
        return row


class SqliteStore(BaseStore):
    """One connection; transactions are serialised (SQLite has one writer)."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url[len("sqlite:///") :]
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-sync")
        self._lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()
        self._next_sync: asyncio.Future[None] | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None  # used in the sync thread only
        self._checkpoint_due = 0.0

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # the WAL is synced by `sync` and before each checkpoint
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in the sync thread
            conn.execute("PRAGMA foreign_keys=ON")
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    async def _in_thread(self, fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        assert self._conn is not None, "store not opened"
        conn = self._conn
        await self._lock.acquire()
        begin = asyncio.ensure_future(self._in_thread(lambda: conn.execute("BEGIN IMMEDIATE")))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            # The caller gave up (e.g. a timeout while BEGIN waits for SQLite's write lock), but the BEGIN
            # runs on in the thread: end the transaction it opens, or the connection would stay in it,
            # holding the write lock for every process sharing the file. The next caller waits for that.
            self._spawn(self._abandon(conn, begin))
            raise
        except BaseException:
            self._lock.release()
            raise
        before = conn.total_changes
        tx = _SqliteTx(self, conn)
        try:
            yield tx
        except BaseException:
            await asyncio.shield(self._in_thread(lambda: conn.execute("ROLLBACK")))
            raise
        else:
            await asyncio.shield(self._in_thread(lambda: conn.execute("COMMIT")))
        finally:
            self._lock.release()
        if tx.wrote or conn.total_changes != before:  # a read needs no fsync
            self._committed()
            await self.sync()

    async def _abandon(self, conn: sqlite3.Connection, begin: asyncio.Future[Any]) -> None:
        """Rolls back what an abandoned BEGIN opened, once it has, then lets the next transaction in."""
        try:
            await asyncio.wait([begin])
            if not begin.cancelled() and begin.exception() is None:
                await self._in_thread(lambda: conn.execute("ROLLBACK"))
        finally:
            self._lock.release()

    async def run(self, work: Work[T], durable: bool = True, beside_loop: bool = False) -> T:
        assert self._conn is not None, "store not opened"
        conn = self._conn
        async with self._lock:
            if not beside_loop and _begin_at_once(conn):
                result, wrote = _transact(conn, work, begun=True)
            else:  # asked for, or another process writes: wait for it in the thread, not on the loop
                # shielded: once started in the thread, the transaction finishes even if the caller is cancelled
                result, wrote = await asyncio.shield(self._in_thread(lambda: _transact(conn, work)))
        if wrote:  # a read needs no fsync
            self._committed()
            if durable:
                await self.sync()
        return result

    async def sync(self) -> None:
        """fsyncs the WAL file: every commit before the call is then on disk. Callers that come while an
        fsync waits for the one before it share it; an fsync that has started covers only what came before."""
        if self._next_sync is None:
            self._next_sync = asyncio.ensure_future(self._sync_next())
        await asyncio.shield(self._next_sync)

    async def _sync_next(self) -> None:
        async with self._sync_lock:
            self._next_sync = None  # from now on a caller's commit may be newer than this fsync
            await asyncio.get_running_loop().run_in_executor(self._syncer, self._fsync_wal)

    def _fsync_wal(self) -> None:
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:  # no WAL: the last checkpoint moved every commit into the synced file
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _committed(self) -> None:
        """Has the sync thread checkpoint the WAL into the database file, at most once a CHECKPOINT_EVERY."""
        now = time.monotonic()
        if now >= self._checkpoint_due:
            self._checkpoint_due = now + CHECKPOINT_EVERY
            self._spawn(asyncio.get_running_loop().run_in_executor(self._syncer, self._checkpoint))

    def _checkpoint(self) -> None:
        """A passive checkpoint (NORMAL: the WAL is synced before, the file after); a failure waits for the next."""
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._checkpointer.execute("PRAGMA synchronous=NORMAL")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the commits stay in the (synced) WAL until the next checkpoint
            log.warning("SQLite checkpoint of %s failed: %s", self.path, exc)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._in_thread(conn.close)
        self._executor.shutdown(wait=True)
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            await asyncio.get_running_loop().run_in_executor(self._syncer, checkpointer.close)
        self._syncer.shutdown(wait=True)
