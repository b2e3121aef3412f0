"""The store: SQLite (WAL, single host, default) or PostgreSQL (several replicas), one async API.

    store = await open_store(config.store.url)
    await store.migrate("dispatcher", MIGRATIONS)
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO t (a) VALUES (?)", (1,))
        rows = await tx.fetchall("SELECT a FROM t WHERE a > ?", (0,))

    def work() -> Work[int]:                   # a hot transaction, written once for both stores
        rows = yield fetchall("SELECT a FROM t WHERE a > ?", (0,))
        return len(rows)
    count = await store.run(work())

`store.run` exists because SQLite runs in its own thread: an `async with` transaction hops to that
thread and back for every statement (and waits for a busy event loop each time, holding the write
lock), while `run` executes the whole generator there in one hop, BEGIN to COMMIT.

Every commit is durable (on disk when it returns) unless `run(work, durable=False)`: such a commit
survives the death of the process (kill -9: SQLite has handed the WAL frames to the OS; PostgreSQL's
server has them) but not a crash of the OS or a power cut, where the last of them may be lost. Any
later durable commit, or `sync()`, makes the earlier ones durable too (the WAL is written in order), so
what a power cut loses is always the newest commits, never one before another. Callers use it for
commits whose loss they repair (the monitor's registry, the dispatcher's delivery cycle: each says how),
and for work that may start before the commit is durable, calling `sync()` before they acknowledge it
to another service (the dispatcher sends a webhook while its event's fsync runs). It saves an fsync per
commit, and other writers' wait for the write lock meanwhile (docs/performance.md).

SQL is written once with `?` placeholders; the Postgres backend turns them into `%s`. Where the
dialects differ, a migration or query gives both texts (`store.dialect` is "sqlite" or "postgres").
The SQLite store is below; the PostgreSQL one is in postgres.py.
Migrations are versioned per component in `schema_migrations` and run at start, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .config import redacted_url

if TYPE_CHECKING:
    from .postgres import PostgresStore

Params = Sequence[Any]
Row = tuple[Any, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """One statement of a transaction written as a generator (see `Store.run`)."""

    op: str  # execute | executemany | fetchall | fetchone
    sql: str
    params: Any = ()


Work = Generator[Query, Any, T]


def execute(sql: str, params: Params = ()) -> Query:
    return Query("execute", sql, params)


def executemany(sql: str, rows: Sequence[Params]) -> Query:
    return Query("executemany", sql, rows)


def fetchall(sql: str, params: Params = ()) -> Query:
    return Query("fetchall", sql, params)


def fetchone(sql: str, params: Params = ()) -> Query:
    return Query("fetchone", sql, params)


def _drive(work: Work[T], answer: Callable[[Query], Any]) -> T:
    try:
        query = next(work)
        while True:
            query = work.send(answer(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Migration:
    """One schema step; `postgres` defaults to the SQLite text when both dialects agree."""

    version: int
    sqlite: str
    postgres: str = ""

    def text(self, dialect: str) -> str:
        return self.postgres if dialect == "postgres" and self.postgres else self.sqlite


class StoreError(Exception):
    """The store could not be opened or migrated."""


class Tx(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...


class Store(Protocol):
    dialect: str
    url: str

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...
    async def run(self, work: Work[T], durable: bool = True) -> T: ...
    async def sync(self) -> None: ...
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def migrate(self, component: str, migrations: Sequence[Migration]) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL, version INTEGER NOT NULL, applied_at DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (component, version))"
)


class BaseStore:
    """What the SQLite store (below) and the Postgres store (postgres.py) share: a transaction runs it all."""

    dialect = ""

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    async def run(self, work: Work[T], durable: bool = True) -> T:
        """Runs a generator of `Query`s as one transaction; returns what the generator returns."""
        async with self.transaction() as tx:
            if not durable:
                await self._relax(tx)
            try:
                query = next(work)
                while True:
                    query = work.send(await _answer(tx, query))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self.transaction() as tx:
            return await tx.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self.transaction() as tx:
            return await tx.fetchone(sql, params)

    async def ping(self) -> None:
        await self.fetchone("SELECT 1")

    async def migrate(self, component: str, migrations: Sequence[Migration]) -> None:
        import time

        async with self.transaction() as tx:
            await self._lock_migrations(tx)
            await tx.execute(_MIGRATIONS_TABLE)
            done = {
                row[0]
                for row in await tx.fetchall("SELECT version FROM schema_migrations WHERE component = ?", (component,))
            }
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                for statement in _statements(migration.text(self.dialect)):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                    (component, migration.version, time.time()),
                )

    async def _lock_migrations(self, tx: Tx) -> None:
        """Serialises concurrent migrators (several replicas starting at once)."""

    async def _relax(self, tx: Tx) -> None:
        """Lets this transaction commit without waiting for the disk (see the module's docstring)."""

    async def sync(self) -> None:
        """Makes every commit made so far durable, those of `run(durable=False)` included."""
        raise NotImplementedError


async def _answer(tx: Tx, query: Query) -> Any:
    if query.op == "executemany":
        return await tx.executemany(query.sql, query.params)
    method = {"execute": tx.execute, "fetchall": tx.fetchall, "fetchone": tx.fetchone}[query.op]
    return await method(query.sql, query.params)


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";\n") if part.strip().strip(";")]


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_answer(conn: sqlite3.Connection, query: Query) -> Any:
    if query.op == "executemany":
        conn.executemany(query.sql, query.params)
        return None
    cursor = conn.execute(query.sql, query.params)
    if query.op == "fetchall":
        return cursor.fetchall()
    if query.op == "fetchone":
        return cursor.fetchone()
    return cursor.rowcount


class _SqliteTx:
    def __init__(self, store: SqliteStore, conn: sqlite3.Connection) -> None:
        self._store, self._conn = store, conn

    async def _answer(self, query: Query) -> Any:
        return await self._store._run(lambda: _sqlite_answer(self._conn, query))

    async def execute(self, sql: str, params: Params = ()) -> int:
        return int(await self._answer(execute(sql, params)))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self._answer(executemany(sql, rows))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._answer(fetchall(sql, params))  # sqlite3 rows are tuples already
        return rows

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._answer(fetchone(sql, params))
        return row


class SqliteStore(BaseStore):
    """One connection owned by one thread; transactions are serialised (SQLite has one writer).

    WAL mode with `synchronous=NORMAL`: a commit writes its WAL frames to the OS and releases the write
    lock; a durable one then fsyncs the WAL file (`sync`) before it returns, in a thread of its own, so
    neither this process's next transaction nor another process's wait for the disk. An acknowledged
    commit survives kill -9 and power loss alike; one not yet synced survives kill -9.
    """

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url[len("sqlite:///") :]
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-sync")
        self._lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()
        self._next_sync: asyncio.Future[None] | None = None
        self._cleanups: set[asyncio.Future[None]] = set()
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # the WAL is synced before a checkpoint; `sync` does the rest
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    async def _run(self, fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        assert self._conn is not None, "store not opened"
        conn = self._conn
        await self._lock.acquire()
        begin = asyncio.ensure_future(self._run(lambda: conn.execute("BEGIN IMMEDIATE")))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            # The caller gave up (e.g. a timeout while BEGIN waits for SQLite's write lock), but the BEGIN
            # runs on in the thread: end the transaction it opens, or the connection would stay in it,
            # holding the write lock for every process sharing the file. The next caller waits for that.
            cleanup = asyncio.ensure_future(self._abandon(conn, begin))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            raise
        except BaseException:
            self._lock.release()
            raise
        try:
            yield _SqliteTx(self, conn)
        except BaseException:
            await asyncio.shield(self._run(lambda: conn.execute("ROLLBACK")))
            raise
        else:
            await asyncio.shield(self._run(lambda: conn.execute("COMMIT")))
        finally:
            self._lock.release()
        await self.sync()

    async def _abandon(self, conn: sqlite3.Connection, begin: asyncio.Future[Any]) -> None:
        """Rolls back what an abandoned BEGIN opened, once it has, then lets the next transaction in."""
        try:
            await asyncio.wait([begin])
            if not begin.cancelled() and begin.exception() is None:
                await self._run(lambda: conn.execute("ROLLBACK"))
        finally:
            self._lock.release()

    async def run(self, work: Work[T], durable: bool = True) -> T:
        assert self._conn is not None, "store not opened"
        conn = self._conn

        def whole() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = _drive(work, lambda query: _sqlite_answer(conn, query))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT (disk full, I/O error) leaves it open
                    conn.execute("ROLLBACK")
                raise
            return result

        async with self._lock:
            # shielded: once started in the thread, the transaction finishes even if the caller is cancelled
            result: T = await asyncio.shield(self._run(whole))
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

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._run(conn.close)
        self._executor.shutdown(wait=True)
        self._syncer.shutdown(wait=True)


async def open_store(url: str) -> Store:
    """Opens (and creates, for SQLite) the store named by `[store] url`."""
    store: SqliteStore | PostgresStore
    if url.startswith("sqlite:///"):
        store = SqliteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # postgres.py builds on this module, so it cannot be imported above

        store = PostgresStore(url)
    else:
        raise StoreError(f"unsupported store url {redacted_url(url)!r}")
    await store.open()
    return store
