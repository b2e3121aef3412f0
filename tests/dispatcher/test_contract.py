"""Headers, signatures (checked by the standardwebhooks package), sequences, idempotency, filters, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tcxhooks import __version__
from tcxhooks.dispatcher.errors import InvalidEvent
from tcxhooks.dispatcher.payloads import validate
from tcxhooks.signing import SignatureError, verify
from tcxhooks.v1 import common_pb2, dispatcher_service_pb2_grpc, events_pb2
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tests.fakes.receiver import Receiver

from .conftest import SECRET, SECRET2, TOKEN, Dispatchers, answered, ended, new_chain, ringing


def _headers(request: object) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}  # type: ignore[attr-defined]


def test_headers_signature_and_sequence(dispatchers: Dispatchers) -> None:
    chain, other = new_chain(), new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url, "secret": SECRET})
        replies = [d.publish(e) for e in (ringing(chain, 0), ringing(other, 0), answered(chain, 1), ended(chain, 1))]
        assert [r.sequence for r in replies] == [1, 1, 2, 3]
        assert all(not r.duplicate and r.deliveries == 1 for r in replies)
        requests = crm.wait_for_sync(4)
    verifier = Webhook(SECRET)
    ids = set()
    for request in requests:
        headers = _headers(request)
        verifier.verify(request.body, headers, json_parse=False)
        verify([SECRET], headers, request.body)
        assert headers["user-agent"] == f"tcxhooks/{__version__}"
        assert re.fullmatch(r"msg_[0-9a-f]{32}", headers["webhook-id"]), headers["webhook-id"]
        ids.add(headers["webhook-id"])
    assert len(ids) == 4
    mine = [r for r in requests if chain in r.form()["id"]]
    assert [_headers(r)["x-tcxhooks-sequence"] for r in mine] == ["1", "2", "3"]
    assert [_headers(r)["x-tcxhooks-endpoint-sequence"] for r in mine] == ["1", "2", "3"]
    assert [r.form()["event"] for r in mine] == ["ringing", "hangupincoming", "incoming"]
    # a tampered body fails both verifiers
    tampered = requests[0].body + b"&x=1"
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, _headers(requests[0]), json_parse=False)
    with pytest.raises(SignatureError):
        verify([SECRET], _headers(requests[0]), tampered)


def test_rotation_signs_with_every_secret(dispatchers: Dispatchers) -> None:
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url, "secret": f"{SECRET} {SECRET2}", "format": "json"})
        d.publish(ringing(new_chain()))
        [request] = crm.wait_for_sync(1)
    headers = _headers(request)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(request.body, headers)  # a CRM still on the old secret
    Webhook(SECRET2).verify(request.body, headers)  # a CRM already on the new one
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").verify(request.body, headers)


def test_no_signature_without_secret(dispatchers: Dispatchers) -> None:
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        d.publish(ringing(new_chain()))
        [request] = crm.wait_for_sync(1)
    assert "webhook-signature" not in _headers(request)


def _publish_again(dispatchers: Dispatchers, store: dict[str, str]) -> None:
    """A producer sends an event again when its ack was lost: alone, and in a batch of repeats only."""
    chain = new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url}, store=store)
        first = d.publish(ringing(chain, 0))
        again = d.publish(ringing(chain, 0))
        assert (first.sequence, first.duplicate) == (1, False)
        assert (again.sequence, again.duplicate, again.deliveries) == (1, True, 0)
        repeats = d.call("PublishBatch", pb.PublishBatchRequest(events=[ringing(chain, 0)] * 2))
        assert [(o.stored.sequence, o.stored.duplicate) for o in repeats.outcomes] == [(1, True)] * 2
        assert d.publish(answered(chain)).sequence == 2
        crm.wait_for_sync(2)
        assert len(d.deliveries(call_id=chain)) == 2
    assert [r.form()["event"] for r in crm.requests] == ["ringing", "hangupincoming"]


def test_publish_is_idempotent_on_event_id(dispatchers: Dispatchers) -> None:
    _publish_again(dispatchers, {})


@pytest.mark.postgres
def test_publish_is_idempotent_on_event_id_postgres(dispatchers: Dispatchers, pg_url: str) -> None:
    _publish_again(dispatchers, {"url": pg_url})


def test_filters_route_events_to_matching_endpoints(dispatchers: Dispatchers) -> None:
    chain, other = new_chain(), new_chain()
    with (
        Receiver() as all_crm,
        Receiver() as ended_crm,
        Receiver() as did_crm,
        Receiver() as user_crm,
        Receiver() as queue_crm,
    ):
        d = dispatchers.make(
            webhook={"url": all_crm.url},
            **{
                "webhook:ended": {"url": ended_crm.url, "events": "incoming, call.answered"},
                "webhook:did": {"url": did_crm.url, "dids": "74950000000"},
                "webhook:user": {"url": user_crm.url, "users": "102,103"},
                "webhook:queue": {"url": queue_crm.url, "queues": "800"},
            },
        )
        events = [
            ringing(chain, 0, user="800", user_type=common_pb2.USER_TYPE_QUEUE),
            ringing(chain, 0, user="102", queue="800"),
            answered(chain, 1, user="102"),
            ended(chain, 1, user="102", queue="800"),
            events_pb2.Event(
                event_id=f"{chain}-1/recording",
                chain=chain,
                recording=events_pb2.RecordingReady(
                    call_id=f"{chain}-1", files=[events_pb2.RecordingFile(url="https://m/1.mp3")]
                ),
            ),
            ringing(other, 0, user="101", did="74950000000"),
            events_pb2.Event(
                event_id=f"{other}-0/analytics",
                chain=other,
                analytics_failed=events_pb2.AnalyticsFailed(call_id=f"{other}-0", error="x"),
            ),
        ]
        counts = [d.publish(e).deliveries for e in events]
        all_crm.wait_for_sync(len(events))
        ended_crm.wait_for_sync(2)
        did_crm.wait_for_sync(2)
        user_crm.wait_for_sync(4)
        queue_crm.wait_for_sync(4)
        d.settle()
        assert len(d.deliveries(status=pb.DELIVERY_STATUS_DELIVERED)) == sum(counts)
    assert counts == [2, 3, 3, 4, 3, 2, 2]

    def seen(crm: Receiver) -> list[tuple[str, str]]:
        return [(r.form()["event"], r.form().get("user", "")) for r in crm.requests]

    assert seen(ended_crm) == [("hangupincoming", "102"), ("incoming", "102")]
    assert seen(did_crm) == [("ringing", "101"), ("analyticsfailed", "")]
    assert seen(user_crm) == [("ringing", "102"), ("hangupincoming", "102"), ("incoming", "102"), ("recording", "")]
    assert seen(queue_crm) == [("ringing", "800"), ("ringing", "102"), ("incoming", "102"), ("recording", "")]

    # the chain's numbering shows where each event sits in the call; the endpoint's has no gaps
    def numbers(crm: Receiver, header: str) -> list[str]:
        return [r.headers[header] for r in crm.requests if chain in r.form()["id"]]

    assert numbers(queue_crm, "x-tcxhooks-sequence") == ["1", "2", "4", "5"]
    assert numbers(queue_crm, "x-tcxhooks-endpoint-sequence") == ["1", "2", "3", "4"]
    assert numbers(ended_crm, "x-tcxhooks-sequence") == ["3", "4"]
    assert numbers(ended_crm, "x-tcxhooks-endpoint-sequence") == ["1", "2"]
    assert numbers(all_crm, "x-tcxhooks-endpoint-sequence") == numbers(all_crm, "x-tcxhooks-sequence")


BAD_EVENTS = [
    events_pb2.Event(),
    events_pb2.Event(event_id="x", chain="c"),
    events_pb2.Event(event_id="", chain="c", ping=events_pb2.Ping(id="p")),
    events_pb2.Event(event_id="x", chain="", ping=events_pb2.Ping(id="p")),
    events_pb2.Event(event_id="x" * 300, chain="c", ping=events_pb2.Ping(id="p")),
    events_pb2.Event(event_id="x\x00y", chain="c", ping=events_pb2.Ping(id="p")),
    events_pb2.Event(event_id="x", chain="c", call=events_pb2.CallEvent(call_id="c-0")),
    events_pb2.Event(
        event_id="x", chain="c", call=events_pb2.CallEvent(type=events_pb2.CALL_EVENT_TYPE_RINGING, call_id="c-0")
    ),
    events_pb2.Event(event_id="x", chain="c", call=events_pb2.CallEvent(type=99, call_id="c-0")),
    events_pb2.Event(
        event_id="x",
        chain="c",
        call=events_pb2.CallEvent(
            type=events_pb2.CALL_EVENT_TYPE_ENDED, call_id="c-1", direction=common_pb2.DIRECTION_INCOMING
        ),
    ),
    events_pb2.Event(event_id="x", chain="c", recording=events_pb2.RecordingReady(call_id="c-1")),
    events_pb2.Event(
        event_id="x", chain="c", status=events_pb2.StatusEvent(type=events_pb2.STATUS_EVENT_TYPE_FORWARDING)
    ),
]


def test_a_refusal_names_what_it_refused() -> None:
    """The checks that name a value in their message format it only when they fail: each still does."""
    chain = new_chain()
    early = ended(chain)
    early.call.started_time.seconds = -1
    unknown_transfer = answered(chain)
    unknown_transfer.call.transfer_type = 7  # type: ignore[assignment]
    refused = {
        "event.event_id is longer than 256 characters": events_pb2.Event(
            event_id="x" * 257, chain="c", ping=events_pb2.Ping(id="p")
        ),
        "event.chain is longer than 256 characters": events_pb2.Event(
            event_id="x", chain="c" * 257, ping=events_pb2.Ping(id="p")
        ),
        "call.type 99 is not a known CallEventType": BAD_EVENTS[8],
        "call.started_time must be a time from 1970 to 9999": early,
        "call.transfer_type 7 is not known": unknown_transfer,
        "status.type 99 is not a known StatusEventType": events_pb2.Event(
            event_id="x",
            chain="c",
            status=events_pb2.StatusEvent(type=99, user="101"),  # type: ignore[arg-type]
        ),
    }
    for message, event in refused.items():
        with pytest.raises(InvalidEvent) as caught:
            validate(event)
        assert str(caught.value) == message
    for event in (
        ended(chain),
        answered(chain),
        events_pb2.Event(event_id="x" * 256, chain="c" * 256, ping=events_pb2.Ping(id="p")),
    ):
        validate(event)  # at the limits, or as the monitor sends them: stored


def test_bad_input_is_rejected_and_never_stored(dispatchers: Dispatchers) -> None:
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        for event in BAD_EVENTS:
            with pytest.raises(grpc.RpcError) as caught:
                d.publish(event)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, event
        for request in (
            pb.RedeliverRequest(),
            pb.RedeliverRequest(delivery_ids=["abc"]),
            pb.SetEndpointStateRequest(name=""),
        ):
            method = "Redeliver" if isinstance(request, pb.RedeliverRequest) else "SetEndpointState"
            with pytest.raises(grpc.RpcError) as caught:
                d.call(method, request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as caught:
            d.call("SetEndpointState", pb.SetEndpointStateRequest(name="nope", enabled=True))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert d.deliveries() == []
        # the service still works after all that
        d.publish(ringing(new_chain()))
        crm.wait_for_sync(1)
    assert len(crm.requests) == 1


def test_service_token_is_required(dispatchers: Dispatchers) -> None:
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        for token in (None, "wrong-token"):
            with pytest.raises(grpc.RpcError) as caught:
                d.call("Publish", pb.PublishRequest(event=ringing(new_chain())), token=token)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert d.deliveries() == []


def test_publish_stream_acks_in_order_and_stops_at_a_bad_event(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        good = [ringing(chain, 0), answered(chain, 1), ended(chain, 1)]
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        replies = list(
            d.stub.PublishStream(iter([pb.PublishRequest(event=e) for e in good]), metadata=metadata, timeout=10)
        )
        assert [r.sequence for r in replies] == [1, 2, 3]
        bad = [pb.PublishRequest(event=ringing(new_chain())), pb.PublishRequest(event=events_pb2.Event(event_id="x"))]
        call = d.stub.PublishStream(iter(bad), metadata=metadata, timeout=10)
        got = []
        with pytest.raises(grpc.RpcError) as caught:
            for reply in call:
                got.append(reply)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        crm.wait_for_sync(3 + len(got))
        d.settle()
        assert len(d.deliveries()) == 3 + len(got)
    assert [r.form()["event"] for r in crm.requests if chain in r.form()["id"]] == [
        "ringing",
        "hangupincoming",
        "incoming",
    ]


def test_publish_batch_stores_in_order_and_refuses_only_bad_events(dispatchers: Dispatchers) -> None:
    chain, other = new_chain(), new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        events = [
            ringing(chain, 0),
            ringing(other, 0),
            events_pb2.Event(event_id="x"),
            answered(chain, 1),
            ended(chain, 1),
            ringing(chain, 0),
        ]  # the last one repeats the first
        reply = d.call("PublishBatch", pb.PublishBatchRequest(events=events))
        kinds = [outcome.WhichOneof("result") for outcome in reply.outcomes]
        assert kinds == ["stored", "stored", "refused", "stored", "stored", "stored"]
        assert "chain" in reply.outcomes[2].refused
        assert [o.stored.sequence for o in reply.outcomes if o.HasField("stored")] == [1, 1, 2, 3, 1]
        assert [o.stored.duplicate for o in reply.outcomes if o.HasField("stored")] == [False] * 4 + [True]
        crm.wait_for_sync(4)
        d.settle()
        assert len(d.deliveries()) == 4
        with pytest.raises(grpc.RpcError) as caught:
            d.call("PublishBatch", pb.PublishBatchRequest(events=[ringing(new_chain())] * 1001))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(d.deliveries()) == 4
    assert [r.form()["event"] for r in crm.requests if chain in r.form()["id"]] == [
        "ringing",
        "hangupincoming",
        "incoming",
    ]


def test_a_burst_of_publish_calls_is_stored_in_full(dispatchers: Dispatchers) -> None:
    """Thousands of concurrent unary Publish calls (many producers at once): every one is stored.
    gRPC's default refuses calls at random (CANCELLED) once 1,000 wait for the event loop."""
    import asyncio

    burst = 5000
    events = [ringing(new_chain()) for _ in range(burst)]

    async def publish_all(address: str) -> list[str]:
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)

            async def one(event: events_pb2.Event) -> str:
                try:
                    await stub.Publish(pb.PublishRequest(event=event), metadata=metadata, timeout=60)
                    return "OK"
                except grpc.aio.AioRpcError as exc:
                    return exc.code().name

            return list(await asyncio.gather(*(one(event) for event in events)))

    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        codes = asyncio.run(publish_all(d.address))
        assert {code: codes.count(code) for code in set(codes)} == {"OK": burst}
        text = d.metrics_text()
        crm.wait_for_sync(burst, timeout=120)
    assert f'tcxhooks_dispatcher_published_total{{outcome="stored"}} {float(burst)}' in text.splitlines()
    assert len({r.form()["id"] for r in crm.requests}) == burst


def test_metrics_are_exposed(dispatchers: Dispatchers) -> None:
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        crm.respond(500)
        d.publish(ringing(new_chain()))
        crm.wait_for_sync(1)
        d.settle()
        text = d.metrics_text()
    lines = {line.split(" ")[0]: line.split(" ")[1] for line in text.splitlines() if line and not line.startswith("#")}
    assert "(uvloop event loop)" in d.log()
    frozen = re.search(r"(\d+) startup objects kept out of garbage collection", d.log())
    assert frozen and int(frozen.group(1)) > 10_000  # no full-collection pauses over the startup heap
    assert lines['tcxhooks_dispatcher_published_total{outcome="stored"}'] == "1.0"
    assert lines['tcxhooks_dispatcher_attempts_total{outcome="failed",status_class="5xx"}'] == "1.0"
    assert lines['tcxhooks_dispatcher_attempts_total{outcome="delivered",status_class="2xx"}'] == "1.0"
    assert lines["tcxhooks_dispatcher_retries_total"] == "1.0"
    assert lines['tcxhooks_dispatcher_endpoint_state{endpoint="default",state="enabled"}'] == "1.0"
    assert lines["tcxhooks_dispatcher_delivery_latency_seconds_count"] == "1.0"
    for name in (
        "tcxhooks_dispatcher_queue_depth",
        "tcxhooks_dispatcher_oldest_pending_age_seconds",
        "tcxhooks_dispatcher_dead_total",
    ):
        assert any(key.startswith(name) for key in lines), name


def test_webhook_ids_are_never_repeated_by_a_fresh_store(dispatchers: Dispatchers) -> None:
    """A CRM de-duplicates on webhook-id: a wiped store (or a move to another one) must not hand out
    the ids it already saw for other events."""
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url})
        chain = new_chain()
        d.publish(ringing(chain))
        d.publish(answered(chain))
        first = [r.headers["webhook-id"] for r in crm.wait_for_sync(2)]
        d.stop()
        store = d.folder / "tcxhooks.db"
        for path in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
            path.unlink(missing_ok=True)
        d.start()
        d.publish(ringing(chain))  # the same event again: a fresh store knows nothing of it
        d.publish(ringing(new_chain()))
        again = [r.headers["webhook-id"] for r in crm.wait_for_sync(4)[2:]]
    assert len(set(first + again)) == 4, (first, again)


def test_a_full_backlog_refuses_new_events_counted_and_alerted(dispatchers: Dispatchers) -> None:
    import yaml

    first, second = new_chain(), new_chain()
    with Receiver() as crm, Receiver() as other:
        d = dispatchers.make(
            webhook={"url": crm.url, "max_backlog": "2"},
            dispatcher={"retry_schedule": "1h"},
            **{"webhook:other": {"url": other.url}},
        )
        crm.respond(*[500] * 10)
        assert [d.publish(e).deliveries for e in (ringing(first), ringing(second), answered(first))] == [2, 2, 1]
        other.wait_for_sync(3)
        metrics = d.metrics_text()
        endpoints = {e.name: e for e in d.call("ListEndpoints", pb.ListEndpointsRequest()).endpoints}
    assert endpoints["default"].pending == 2 and endpoints["other"].pending == 0
    assert 'tcxhooks_dispatcher_refused_total{endpoint="default",reason="backlog_full"} 1.0' in metrics
    assert 'tcxhooks_dispatcher_backlog_limit{endpoint="default"} 2.0' in metrics
    # the shipped alert rules watch these series
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "alerts.yml").read_text())
    expressions = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    for series in (
        "tcxhooks_dispatcher_refused_total",
        "tcxhooks_dispatcher_backlog_limit",
        "tcxhooks_dispatcher_queue_depth",
        "tcxhooks_dispatcher_dead_total",
    ):
        assert series in expressions and f"\n{series}" in metrics, series
