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

`store.run` exists because SQLite's calls block: an `async with` transaction hops to the store's thread
and back for every statement (and waits for a busy event loop each time, holding the write lock), while
`run` executes the whole generator at once, BEGIN to COMMIT (sqlite.py says where; `beside_loop=True` asks
for the store's thread, for work whose SQLite time should not be the event loop's).

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
The SQLite store is in sqlite.py, the PostgreSQL one in postgres.py.
Migrations are versioned per component in `schema_migrations` and run at start, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .config import redacted_url

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .sqlite import SqliteStore

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
    async def run(self, work: Work[T], durable: bool = True, beside_loop: bool = False) -> T: ...
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

    async def run(self, work: Work[T], durable: bool = True, beside_loop: bool = False) -> T:
        """Runs a generator of `Query`s as one transaction; returns what the generator returns.
        `beside_loop`: SQLite only (sqlite.py); a network store never blocks the event loop."""
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


async def open_store(url: str) -> Store:
    """Opens (and creates, for SQLite) the store named by `[store] url`."""
    store: SqliteStore | PostgresStore
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore  # sqlite.py builds on this module, as postgres.py does

        store = SqliteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # postgres.py builds on this module, so it cannot be imported above

        store = PostgresStore(url)
    else:
        raise StoreError(f"unsupported store url {redacted_url(url)!r}")
    await store.open()
    return store
