"""The media service on the PostgreSQL store (own schema, so parallel test runs never collide)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tcxhooks.v1 import media_service_pb2
from tests.fakes.media_peers import Peers

from .conftest import Media, decode_mp3, leg, make_wav, running_media

pytestmark = pytest.mark.postgres
SERVER = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"media_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def test_recording_through_postgres_store(tmp_path: Path, peers: Peers, schema: str) -> None:
    store = {"url": f"{SERVER}?options=-csearch_path%3D{schema}"}
    media_gen = running_media(tmp_path, peers, store=store)
    media: Media = next(media_gen)
    try:
        call_id = "251125184500_950-1"
        now = time.time()
        peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 2.0), start=now - 2, end=now)
        assert media.due(leg(call_id, end=now)) is False
        assert media.due(leg(call_id, end=now)) is True
        [link] = peers.wait_recording(call_id)["links"]
        assert decode_mp3(httpx.get(link, timeout=10).content)[0] == pytest.approx(2.0, abs=0.3)
        media.wait_state(call_id, media_service_pb2.RECORDING_JOB_STATE_DONE)
        with psycopg.connect(SERVER, autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT state, published FROM {schema}.media_jobs WHERE call_id = %s", (call_id,)
            ).fetchall()
        assert rows == [("done", 1)]
    finally:
        with pytest.raises(StopIteration):
            next(media_gen)
