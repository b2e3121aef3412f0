"""kill -9 of the dispatcher during a stream (SQLite and Postgres); two replicas sharing Postgres."""
from __future__ import annotations

import random
import threading
import time

import grpc
import pytest

from tcxhooks.v1 import dispatcher_service_pb2 as pb, events_pb2
from tests.helpers.receiver import Receiver, Request

from .conftest import Dispatcher, Dispatchers, answered, new_chain

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


def check_stream(requests: list[Request], events: list[events_pb2.Event]) -> None:
    """Every event received; a repeat only with the same webhook-id and body; per-call order kept."""
    ids_of_body: dict[bytes, set[str]] = {}
    body_of_id: dict[str, bytes] = {}
    for request in requests:
        ids_of_body.setdefault(request.body, set()).add(request.headers["webhook-id"])
        assert body_of_id.setdefault(request.headers["webhook-id"], request.body) == request.body
    assert all(len(ids) == 1 for ids in ids_of_body.values())
    assert {r.form()["id"] for r in requests} == {e.call.call_id for e in events}
    first: dict[str, list[int]] = {}
    seen: set[str] = set()
    for request in requests:
        if request.headers["webhook-id"] in seen:
            continue
        seen.add(request.headers["webhook-id"])
        first.setdefault(request.form()["id"].rsplit("-", 1)[0], []).append(int(request.headers["x-tcxhooks-sequence"]))
    assert all(seqs == list(range(1, PER_CALL + 1)) for seqs in first.values()), first


def _kill_during_stream(dispatchers: Dispatchers, store_url: str) -> None:
    rng = random.Random()
    events = stream()
    with Receiver() as crm:
        crm.respond(*[200] * len(events), delay=0.02)  # a slowish CRM, so kills land mid-delivery
        d = dispatchers.make(webhook={"url": crm.url, "concurrency": "2"}, store={"url": store_url},
                             dispatcher={"lease_ttl": "2s"})
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
