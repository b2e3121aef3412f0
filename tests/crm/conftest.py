"""Fixtures of the CRM adapter tests: the adapters' tables on SQLite and on the local PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tcxhooks.dispatcher.crm import LegStore
from tcxhooks.platform.store import open_store
from tests.helpers.postgres import postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
    else:
        with postgres_schema("crm_t") as url:
            yield url


@pytest.fixture
async def legs(store_url: str) -> AsyncIterator[LegStore]:
    store = await open_store(store_url)
    legs = LegStore(store)
    await legs.migrate()
    yield legs
    await store.close()
