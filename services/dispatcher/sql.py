"""Statement building blocks shared by the outbox and the ledger, written once for both dialects."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TypeVar

from tcxhooks.platform.store import Row, Work, execute, fetchall

S = TypeVar("S")
CHUNK = 500
_MAX_PARAMS = 30000  # below SQLite's 32766 and Postgres' 65535 bind parameters


def marks(count: int) -> str:
    return ", ".join("?" * count)


def chunks(items: Sequence[S], size: int = CHUNK) -> Iterable[Sequence[S]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def one_of(column: str, values: Sequence[object], postgres: bool) -> tuple[str, list[object]]:
    """`column` is one of `values` (at most a few thousand). On SQLite one statement text whatever
    their number, so the hot statements are prepared once, not per batch size. Postgres keeps
    literal lists: its generic plan for `= ANY(array)` measured slower here. An empty list matches
    nothing (`IN ()` is a syntax error on Postgres)."""
    if not values:
        return "1 = 0", []
    if postgres:
        return f"{column} IN ({marks(len(values))})", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]


def insert(target: str, rows: Sequence[tuple[object, ...]], tail: str = "", returning: str = "") -> Work[list[Row]]:
    """Multi-row INSERTs (`target` = "table (columns)"), one statement per chunk: far cheaper than
    executemany's round trips on Postgres, and on SQLite than executemany's per-row steps, each of
    which gives up the GIL and waits to take it back from a busy event loop. With `returning`
    (columns), the inserted rows' values of those columns."""
    fetched: list[Row] = []
    if not rows:
        return fetched
    width = len(rows[0])
    row_marks = f"({marks(width)})"
    for chunk in chunks(rows, max(1, min(CHUNK, _MAX_PARAMS // width))):
        values = ", ".join([row_marks] * len(chunk))
        params = [v for row in chunk for v in row]
        if returning:
            fetched += yield fetchall(f"INSERT INTO {target} VALUES {values}{tail} RETURNING {returning}", params)
        else:
            yield execute(f"INSERT INTO {target} VALUES {values}{tail}", params)
    return fetched
