"""kill -9 and SIGTERM of the dispatcher during a stream and with a backlog waiting (SQLite and
Postgres); two replicas sharing Postgres; nothing acknowledged before it is on disk."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import grpc
import pytest

from tcxhooks.platform.store import open_store
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import events_pb2
from tests.fakes.receiver import Receiver, Request

from .conftest import Dispatcher, Dispatchers, answered, new_chain, ringing

CALLS, PER_CALL = 12, 10


def stream() -> list[events_pb2.Event]:
    """PER_CALL events per call, calls interleaved, every event with its own body."""
    chains = [new_chain() for _ in range(CALLS)]
    return [answered(chain, link) for link in range(1, PER_CALL + 1) for chain in chains]


def publish_until_acked(targets: list[Dispatcher], events: list[events_pb2.Event], pause: float) -> None:
    """What a producer does: retry each Publish until a dispatcher acknowledges it."""
    for n, event in enumerate(events):
        while True:
            target = targets[n % len(targets)]
            try:
                target.publish(event)
                break
            except (grpc.RpcError, AssertionError):
                time.sleep(0.1)
        time.sleep(pause)


def check_stream(requests: list[Request], events: list[events_pb2.Event], per_call: int = PER_CALL) -> None:
    """Every event received; a repeat only with the same webhook-id and body; per-call order kept."""
    ids_of_body: dict[bytes, set[str]] = {}
    body_of_id: dict[str, bytes] = {}
    for request in requests:
        ids_of_body.setdefault(request.body, set()).add(request.headers["webhook-id"])
        assert body_of_id.setdefault(request.headers["webhook-id"], request.body) == request.body
    assert all(len(ids) == 1 for ids in ids_of_body.values())
    assert {r.form()["id"] for r in requests} == {e.call.call_id for e in events}
    first: dict[str, list[tuple[int, int]]] = {}
    seen: set[str] = set()
    for request in requests:
        if request.headers["webhook-id"] in seen:
            continue
        seen.add(request.headers["webhook-id"])
        numbers = (int(request.headers["x-tcxhooks-sequence"]), int(request.headers["x-tcxhooks-endpoint-sequence"]))
        first.setdefault(request.form()["id"].rsplit("-", 1)[0], []).append(numbers)
    assert all(seqs == [(n, n) for n in range(1, per_call + 1)] for seqs in first.values()), first


def _kill_during_stream(dispatchers: Dispatchers, store_url: str) -> None:
    rng = random.Random()
    events = stream()
    with Receiver() as crm:
        crm.respond(*[200] * len(events), delay=0.02)  # a slowish CRM, so kills land mid-delivery
        d = dispatchers.make(
            webhook={"url": crm.url, "concurrency": "2"}, store={"url": store_url}, dispatcher={"lease_ttl": "2s"}
        )
        producer = threading.Thread(target=publish_until_acked, args=([d], events, 0.005))
        producer.start()
        for point in sorted(rng.sample(range(5, len(events) - 10), 3)):
            crm.wait_for_sync(point, timeout=60)
            d.kill9()
            d.start()
        producer.join(120)
        crm.wait_for_sync(len(events), timeout=60)
        d.settle(30)
        requests = list(crm.requests)
    check_stream(requests, events)
    assert len(d.deliveries(status=pb.DELIVERY_STATUS_DELIVERED, limit=1000)) == len(events)


def test_kill9_during_stream_sqlite(dispatchers: Dispatchers, tmp_path: object) -> None:
    _kill_during_stream(dispatchers, f"sqlite:///{dispatchers.folder / 'store.db'}")


@pytest.mark.postgres
def test_kill9_during_stream_postgres(dispatchers: Dispatchers, pg_url: str) -> None:
    _kill_during_stream(dispatchers, pg_url)


def _delivered_total(d: Dispatcher) -> float:
    for line in d.metrics_text().splitlines():
        if line.startswith("tcxhooks_dispatcher_delivered_total "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.postgres
def test_two_replicas_share_postgres_without_double_delivery(dispatchers: Dispatchers, pg_url: str) -> None:
    events = stream()
    with Receiver() as crm:
        crm.respond(*[200] * len(events), delay=0.01)
        settings = {"webhook": {"url": crm.url, "concurrency": "4"}, "store": {"url": pg_url}}
        one = dispatchers.make("one", **settings)
        two = dispatchers.make("two", **settings)
        publish_until_acked([one, two], events, 0.0)
        crm.wait_for_sync(len(events), timeout=60)
        time.sleep(1.0)  # anything delivered twice would arrive by now
        requests = list(crm.requests)
        shares = (_delivered_total(one), _delivered_total(two))
    assert len(requests) == len(events)
    check_stream(requests, events)
    assert sum(shares) == len(events) and min(shares) > 0, shares


def test_sigterm_stops_cleanly_and_keeps_the_queue(dispatchers: Dispatchers) -> None:
    events = stream()[:30]
    with Receiver() as crm:
        crm.respond(*[200] * len(events), delay=0.05)
        d = dispatchers.make(webhook={"url": crm.url, "concurrency": "1"})
        publish_until_acked([d], events, 0.0)
        crm.wait_for_sync(3)
        assert d.stop() == 0
        assert len(crm.requests) < len(events)
        d.start()
        crm.wait_for_sync(len(events), timeout=60)
        d.settle()
        requests = list(crm.requests)
    assert len({r.headers["webhook-id"] for r in requests}) == len(events)
    assert "stopped" in d.log()


BACKLOG_CALLS, BACKLOG_PER_CALL = 6, 5


@pytest.mark.parametrize("stop", ["kill9", "sigterm"])
def test_a_backlog_waiting_per_chain_survives_a_stop_in_order(dispatchers: Dispatchers, stop: str) -> None:
    """The CRM answers 500 while every call's events pile up (several waiting per chain), the
    dispatcher is killed or stopped, then the CRM comes back: each chain goes out oldest first."""
    chains = [new_chain() for _ in range(BACKLOG_CALLS)]
    events = [answered(chain, link) for link in range(1, BACKLOG_PER_CALL + 1) for chain in chains]
    with Receiver() as crm:
        crm.respond(*[500] * 100_000)
        d = dispatchers.make(
            webhook={"url": crm.url, "concurrency": "4"},
            dispatcher={"retry_schedule": ",".join(["1s"] * 50), "lease_ttl": "2s"},
        )
        publish_until_acked([d], events, 0.0)
        deadline = time.monotonic() + 30
        while sum(1 for x in d.deliveries(status=pb.DELIVERY_STATUS_PENDING, limit=1000) if x.attempts) < len(chains):
            assert time.monotonic() < deadline, "every chain's head should have failed once"
            time.sleep(0.1)
        assert len(d.deliveries(status=pb.DELIVERY_STATUS_PENDING, limit=1000)) == len(events)
        if stop == "kill9":
            d.kill9()
        else:
            assert d.stop() == 0
        d.start()
        crm.recover()
        crm.wait_for_sync(len(events), timeout=60)
        d.settle(30)
        requests = list(crm.requests)
    check_stream(requests, events, BACKLOG_PER_CALL)


def test_publish_answers_only_once_its_event_is_on_disk(dispatchers: Dispatchers) -> None:
    """While another writer holds the SQLite file, no Publish may be acknowledged; once it lets go,
    an acknowledged event survives kill -9."""
    chain = new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        d.publish(ringing(chain))
        crm.wait_for_sync(1)
        blocker = sqlite3.connect(d.folder / "tcxhooks.db", isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            for method, request in (
                ("Publish", pb.PublishRequest(event=answered(chain))),
                ("PublishBatch", pb.PublishBatchRequest(events=[answered(chain)])),
            ):
                with pytest.raises(grpc.RpcError) as held:
                    d.call(method, request, timeout=2)
                assert held.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (method, held.value)
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        d.publish(answered(chain))  # the producer's retry (the same event) is acknowledged now
        d.kill9()
        d.start()
        crm.wait_for_sync(2)
        d.settle()
        received = {r.headers["webhook-id"]: r.form()["event"] for r in crm.requests}  # a repeat: same id
    assert list(received.values()) == ["ringing", "hangupincoming"]


async def test_the_dispatchers_sqlite_store_syncs_every_commit(dispatchers: Dispatchers) -> None:
    """kill -9 cannot show a missing fsync (the OS still has the pages): the settings are checked as the
    dispatcher opens its store. NORMAL in WAL mode: SQLite syncs the WAL before each checkpoint and the file
    after it; the store fsyncs the WAL before a durable commit returns (tests/platform/test_store.py)."""
    store = await open_store(f"sqlite:///{dispatchers.folder / 'synced.db'}")
    try:
        assert await store.fetchone("PRAGMA synchronous") == (1,)  # NORMAL, never OFF
        assert await store.fetchone("PRAGMA journal_mode") == ("wal",)
    finally:
        await store.close()
