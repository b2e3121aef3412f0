"""Shared platform fixtures: a store of each kind, SQLite in a temp folder and the local PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tcxhooks.platform.store import Store, open_store
from tests.helpers.postgres import PG_URL


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'platform.db'}" if request.param == "sqlite" else PG_URL
    opened = await open_store(url)
    yield opened
    await opened.close()
