"""The baseline and its outbox on PostgreSQL too: restart after downtime sends the differences once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcxhooks.monitor.status.store import StatusStore
from tcxhooks.platform.store import open_store

from .conftest import Harness, Sim, monitor_config, status_config, summary

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.postgres
async def test_postgres_baseline_restart_and_outbox(tmp_path: Path, sim: Sim) -> None:
    config = monitor_config(status_config(tmp_path, sim, store={"url": PG_URL}))  # rows keyed by this sim's URL
    store = await open_store(PG_URL)
    await StatusStore(store, sim.url).migrate()
    for table in ("monitor_status_view", "monitor_status_outbox"):  # a previous run may have used this port
        await store.execute(f"DELETE FROM {table} WHERE pbx = ?", (sim.url,))
    await store.close()
    harness = await Harness(config).open()
    try:
        assert await harness.poll() == []
        await harness.close()
        sim.do("POST", "/queue-login", {"number": "103", "status": "out"})

        async def down(event: object) -> None:
            raise ConnectionError("dispatcher down")

        harness.publish = down
        await harness.open()
        assert await harness.poll() == []  # stored with the new view, not published
        harness.publish = None
        await harness.restart()
        assert summary(await harness.poll()) == [
            ("queuelogin", "103", "out", "in", ""),
            ("queuestatus", "103", "out", "in", "801"),
        ]
        assert await harness.poll() == []
    finally:
        await harness.close()


async def test_unreadable_stored_view_becomes_a_new_silent_baseline(harness: Harness, sim: Sim) -> None:
    await harness.poll()
    assert harness.store is not None
    await harness.store.execute("UPDATE monitor_status_view SET body = ?", ('{"extensions": 7}',))
    await harness.restart()
    sim.do("POST", "/profile", {"number": "101", "profile": "Away"})
    assert await harness.poll() == []  # baseline again, no crash, no flood
    sim.do("POST", "/profile", {"number": "101", "profile": "Available"})
    assert summary(await harness.poll()) == [("forwarding", "101", "Available", "Away", "")]
