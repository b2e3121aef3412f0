"""A throwaway schema in the local PostgreSQL (tests and benches that run the Postgres store for real).

with postgres_schema("dispatcher_t") as url:     # url puts the new schema first on the search path
    ...
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

PG_URL = os.environ.get("TCXH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """Creates `<prefix>_<random>` in PG_URL's database, yields a store URL using it, drops it after."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        raise RuntimeError(f"PostgreSQL at {PG_URL} is needed: {exc}") from exc
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def store_of(kind: str, folder: Path, prefix: str) -> Iterator[str]:
    """A store URL of `kind` ("sqlite": a file in `folder`; "postgres": a throwaway schema)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{prefix}.db'}"
    else:
        with postgres_schema(prefix) as url:
            yield url
