"""The PostgreSQL store (several replicas): the API of store.py over a psycopg connection pool.

SQL comes with `?` placeholders, as for SQLite; they become `%s` here (and a literal `%` becomes `%%`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .config import redacted_url
from .store import BaseStore, Params, Row, StoreError, Tx


def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cur = await self._conn.execute(_pg_sql(sql), params or None)
        return int(cur.rowcount)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._conn.cursor() as cur:
            await cur.executemany(_pg_sql(sql), rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        cur = await self._conn.execute(_pg_sql(sql), params or None)
        return [tuple(r) for r in await cur.fetchall()]

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        cur = await self._conn.execute(_pg_sql(sql), params or None)
        row = await cur.fetchone()
        return tuple(row) if row is not None else None


class PostgresStore(BaseStore):
    dialect = "postgres"

    def __init__(self, url: str, max_size: int = 8) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.url = url
        self._pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True})

    async def open(self) -> None:
        import psycopg

        try:
            await self._pool.open(wait=True, timeout=15)
        except (psycopg.Error, Exception) as exc:
            raise StoreError(f"cannot open PostgreSQL store: {redacted_url(self.url)}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    async def _lock_migrations(self, tx: Tx) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(7316001)")

    async def _relax(self, tx: Tx) -> None:
        await tx.execute("SET LOCAL synchronous_commit TO OFF")

    async def sync(self) -> None:
        """A transaction with a transaction id commits by flushing the WAL up to its commit record, and so
        every commit before it, the relaxed ones included."""
        async with self.transaction() as tx:
            await tx.fetchone("SELECT txid_current()")

    async def close(self) -> None:
        await self._pool.close()
