"""Transactions written as generators (`Store.run`) on both stores: results, atomicity, rollback."""
from __future__ import annotations

import uuid
from typing import AsyncIterator

import pytest

from tcxhooks.platform.store import Store, Work, execute, executemany, fetchall, fetchone


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
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        await store.run(_fill_then_fail(table))
    assert await store.run(_read(table)) == ({"a": 1}, 1)


async def test_an_exception_in_the_work_itself_rolls_back(store: Store, table: str) -> None:
    def broken() -> Work[None]:
        yield execute(f"INSERT INTO {table} (k, v) VALUES (?, ?)", ("x", 1))
        raise ValueError("computed something wrong")

    with pytest.raises(ValueError, match="computed something wrong"):
        await store.run(broken())
    assert await store.run(_read(table)) == ({}, 0)
