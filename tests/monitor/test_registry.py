"""The call registry and outbox in SQLite and PostgreSQL: per PBX, written together, restored after a restart."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tcxhooks.monitor.callgraph import CallGraph, Settings
from tcxhooks.monitor.engine import rows_of
from tcxhooks.monitor.facts import Facts
from tcxhooks.monitor.participant import Participant
from tcxhooks.monitor.registry import Registry
from tcxhooks.platform.store import open_store

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def roundtrip(url: str) -> None:
    store = await open_store(url)
    pbx_a, pbx_b = f"https://a-{uuid.uuid4().hex}.test", f"https://b-{uuid.uuid4().hex}.test"
    first, other = Registry(store, pbx_a), Registry(store, pbx_b)
    await first.migrate()
    graph = CallGraph(Settings(timezone="UTC"), Facts())
    graph.upsert(
        Participant.parse(
            {
                "id": 7,
                "dn": "101",
                "status": "Ringing",
                "callid": 698,
                "party_dn_type": "Wexternalline",
                "party_caller_id": "79161234567",
            }
        ),
        100.0,
    )
    rows = [row for item in graph.drain() for row in rows_of(item)]
    chain = graph.chains[698]
    await first.commit([(698, json.dumps(chain.to_dict()))], [], rows)
    await other.commit([(698, json.dumps(chain.to_dict()))], [], [])  # the same call number on another PBX: no clash
    assert [r.seq for r in rows] == sorted(r.seq for r in rows) and rows[0].seq > 0
    restored = await Registry(store, pbx_a).load_chains()
    assert [c.to_dict() for c in restored] == [chain.to_dict()]
    assert [(r.chain, r.target, r.payload) for r in await first.load_outbox()] == [
        (r.chain, r.target, r.payload) for r in rows
    ]
    await first.delete_outbox([r.seq for r in rows])
    await first.commit([], [698], [])
    assert await first.load_chains() == [] and await first.load_outbox() == []
    assert len(await other.load_chains()) == 1
    await other.commit([], [698], [])
    await store.close()


async def test_sqlite(tmp_path: Path) -> None:
    await roundtrip(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
async def test_postgres() -> None:
    await roundtrip(PG_URL)
