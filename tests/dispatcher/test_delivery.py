"""Retries, a CRM that refuses / fails / hangs and comes back, 410 Gone, dead deliveries."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import trustme

from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tests.fakes.receiver import Receiver, Request
from tests.helpers.net import free_port

from .conftest import Dispatchers, answered, ended, new_chain, ringing


def _wait(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def first_seen(requests: list[Request]) -> list[Request]:
    """Requests without repeats of a webhook-id (a receiver de-duplicates on it)."""
    seen: set[str] = set()
    out = []
    for request in requests:
        if request.headers["webhook-id"] not in seen:
            seen.add(request.headers["webhook-id"])
            out.append(request)
    return out


@contextlib.contextmanager
def socket_crm(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A CRM below HTTP: `answer` handles each connection on the bare socket, which is closed after it.
    Yields the URL of its /hook."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                answer(connection)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        listener.close()


def assert_in_order(requests: list[Request], chains: list[str], per_chain: int) -> None:
    for chain in chains:
        sequences = [int(r.headers["x-tcxhooks-sequence"]) for r in requests if r.form()["id"].startswith(chain)]
        assert sequences == list(range(1, per_chain + 1)), (chain, sequences)


def test_failed_attempts_are_retried_and_logged(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm, Receiver() as elsewhere:
        d = dispatchers.make(webhook={"url": crm.url})
        crm.respond(500)
        crm.respond(302, headers={"Location": elsewhere.url})  # a redirect is a failure, never followed
        d.publish(ringing(chain))
        [request] = crm.wait_for_sync(1)
        d.settle()
        [delivery] = d.deliveries(call_id=chain, with_attempts=True)
    assert elsewhere.requests == []
    assert delivery.status == pb.DELIVERY_STATUS_DELIVERED
    assert [a.http_status for a in delivery.attempt_log] == [500, 302, 200]
    assert [a.number for a in delivery.attempt_log] == [1, 2, 3]
    assert delivery.attempt_log[0].response_snippet == "error"
    assert request.headers["webhook-id"] == delivery.webhook_id


def test_a_post_the_crm_read_and_dropped_is_a_recorded_attempt(dispatchers: Dispatchers) -> None:
    """The CRM reads the first POST and hangs up without a word: that try is an attempt in the log,
    retried on the schedule, never re-sent at once unrecorded."""
    received: list[bytes] = []

    def answer(connection: socket.socket) -> None:
        received.append(connection.recv(65536))
        if len(received) > 1:
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")

    chain = new_chain()
    with socket_crm(answer) as url:
        d = dispatchers.make(webhook={"url": url})
        d.publish(ringing(chain))
        d.settle()
        [delivery] = d.deliveries(call_id=chain, with_attempts=True)
    assert len(received) == 2
    assert [(a.number, a.http_status) for a in delivery.attempt_log] == [(1, 0), (2, 200)]
    assert delivery.attempt_log[0].error.startswith("http: "), delivery.attempt_log[0].error


def test_cookies_a_crm_sets_are_never_sent_back(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm:
        # by name: aiohttp's default jar would ignore a cookie of a bare IP address anyway
        url = crm.url.replace("127.0.0.1", "localhost")
        d = dispatchers.make(webhook={"url": url})
        crm.respond(200, headers={"Set-Cookie": "session=abc123; Path=/"})
        d.publish(ringing(chain))
        crm.wait_for_sync(1)
        d.publish(answered(chain))
        first, second = crm.wait_for_sync(2)
    assert "Cookie" not in first.headers and "Cookie" not in second.headers, second.headers


def test_https_crm_is_trusted_only_through_its_ca_file(dispatchers: Dispatchers, tmp_path: Path) -> None:
    authority = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    ca_file = tmp_path / "crm-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    chain = new_chain()
    with Receiver(tls=tls) as crm:
        trusting = dispatchers.make("trusting", webhook={"url": crm.url, "ca_file": str(ca_file)})
        doubting = dispatchers.make("doubting", webhook={"url": crm.url})
        trusting.publish(ringing(chain))
        doubting.publish(ringing(chain))
        [request] = crm.wait_for_sync(1)
        _wait(lambda: any(x.attempts for x in doubting.deliveries(with_attempts=True)))
        [refused] = doubting.deliveries(with_attempts=True)
    assert request.form()["event"] == "ringing"
    assert len(crm.requests) == 1  # the unknown certificate was never trusted
    assert refused.status == pb.DELIVERY_STATUS_PENDING and refused.attempt_log[0].http_status == 0
    assert refused.attempt_log[0].error.startswith("connect: "), refused.attempt_log[0].error


def test_a_crm_answering_garbage_is_retried_and_its_url_token_kept_secret(dispatchers: Dispatchers) -> None:
    def answer(connection: socket.socket) -> None:
        connection.recv(65536)
        connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    with socket_crm(answer) as url:
        d = dispatchers.make(webhook={"url": f"{url}?token=s3cret-in-url"})
        d.publish(ringing(new_chain()))
        _wait(lambda: any(x.attempts for x in d.deliveries()))
        [delivery] = d.deliveries(with_attempts=True)
    assert delivery.status == pb.DELIVERY_STATUS_PENDING  # retried later, not lost
    [attempt, *_] = delivery.attempt_log
    assert attempt.http_status == 0 and attempt.error.split(":")[0] in ("http", "connect"), attempt.error
    assert "s3cret" not in attempt.error and "s3cret" not in d.log()


def test_crm_down_500_and_hanging_then_back(dispatchers: Dispatchers) -> None:
    port = free_port()
    chains = [new_chain() for _ in range(4)]
    url = f"http://127.0.0.1:{port}/hook?token=s3cret-in-url"
    d = dispatchers.make(
        webhook={"url": url, "timeout": "1s", "connect_timeout": "1s"},
        dispatcher={"retry_schedule": "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"},
    )
    for chain in chains:  # connection refused: nobody listens yet
        d.publish(ringing(chain))
        d.publish(answered(chain))
    _wait(lambda: sum(x.attempts >= 1 for x in d.deliveries(status=pb.DELIVERY_STATUS_PENDING)) == 4)
    with Receiver(port) as crm:
        crm.respond(500, 500, 429)
        crm.respond(200, delay=2.0)  # hangs past the 1 s timeout (then records it anyway)
        for chain in chains:
            d.publish(ended(chain))
        crm.wait_for_sync(12, timeout=40)
        d.settle(30)
        requests = first_seen(crm.requests)
    assert len(requests) == 12
    assert_in_order(requests, chains, 3)
    logged = d.deliveries(with_attempts=True)
    errors = [a.error for x in logged for a in x.attempt_log if a.error]
    assert any("connect" in e for e in errors) and any("timeout" in e for e in errors)
    assert not [e for e in errors if "s3cret" in e] and "s3cret" not in d.log()  # a token in the URL stays secret
    assert {a.http_status for x in logged for a in x.attempt_log} >= {0, 500, 429, 200}


def test_dead_delivery_unblocks_its_chain_and_can_be_redelivered(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url}, dispatcher={"retry_schedule": "1s"})
        crm.respond(500, 500)
        d.publish(ringing(chain))
        d.publish(answered(chain))
        [request] = crm.wait_for_sync(1)
        assert request.form()["event"] == "hangupincoming"
        [dead] = d.deliveries(status=pb.DELIVERY_STATUS_DEAD, with_attempts=True)
        assert [a.http_status for a in dead.attempt_log] == [500, 500]
        assert d.call("Redeliver", pb.RedeliverRequest(dead=True)).count == 1
        crm.wait_for_sync(2)
    assert crm.requests[1].form()["event"] == "ringing"
    assert crm.requests[1].headers["webhook-id"] == dead.webhook_id


def test_410_disables_the_endpoint_until_enabled(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm, Receiver() as other:
        d = dispatchers.make(webhook={"url": crm.url}, **{"webhook:other": {"url": other.url}})
        crm.respond(410)
        # stored together, before the 410 comes back
        d.call("PublishBatch", pb.PublishBatchRequest(events=[ringing(chain), answered(chain)]))
        other.wait_for_sync(2)
        _wait(
            lambda: (
                {e.name: e.state for e in d.call("ListEndpoints", pb.ListEndpointsRequest()).endpoints}["default"]
                == pb.ENDPOINT_STATE_GONE
            )
        )
        endpoints = {e.name: e for e in d.call("ListEndpoints", pb.ListEndpointsRequest()).endpoints}
        assert endpoints["default"].pending == 2
        assert endpoints["default"].last_error == "410 Gone"
        assert endpoints["other"].state == pb.ENDPOINT_STATE_ENABLED
        # gone: what is pending stays for later, a new event is not stored for it (counted)
        assert d.publish(ended(chain)).deliveries == 1
        other.wait_for_sync(3)
        assert crm.requests == []
        reply = d.call("SetEndpointState", pb.SetEndpointStateRequest(name="default", enabled=True))
        assert reply.endpoint.state == pb.ENDPOINT_STATE_ENABLED
        crm.wait_for_sync(2)
        d.settle()
        assert 'tcxhooks_dispatcher_refused_total{endpoint="default",reason="gone"} 1.0' in d.metrics_text()
    assert [r.form()["event"] for r in crm.requests] == ["ringing", "hangupincoming"]
    # the endpoint's own numbering shows the receiver the event it never got
    assert [r.headers["x-tcxhooks-endpoint-sequence"] for r in other.requests] == ["1", "2", "3"]


def test_retry_after_is_honoured_when_longer(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        crm.respond(503, headers={"Retry-After": "120"})
        d.publish(ringing(chain))
        _wait(lambda: d.deliveries(call_id=chain, with_attempts=True)[0].attempt_log)
        [delivery] = d.deliveries(call_id=chain, with_attempts=True)
    assert delivery.status == pb.DELIVERY_STATUS_PENDING
    wait = delivery.next_attempt_time.ToNanoseconds() / 1e9 - delivery.attempt_log[0].time.ToNanoseconds() / 1e9
    assert 119 <= wait <= 121  # not the 1 s of the schedule


def test_a_hanging_endpoint_does_not_hold_back_another(dispatchers: Dispatchers) -> None:
    chains = [new_chain() for _ in range(20)]
    with Receiver() as slow, Receiver() as fast:
        slow.respond(*[200] * 40, delay=2.0)
        d = dispatchers.make(
            webhook={"url": slow.url, "concurrency": "1"},
            **{"webhook:fast": {"url": fast.url, "concurrency": "1"}},
            dispatcher={"batch": "2"},
        )  # few claims in memory: a shared budget would starve
        for chain in chains:
            d.publish(ringing(chain))
        fast.wait_for_sync(len(chains), timeout=20)
        assert len(slow.requests) < len(chains)
