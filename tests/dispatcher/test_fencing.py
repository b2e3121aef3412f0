"""The lease fence on Publish / PublishBatch (dispatcher_service.proto, Fence), through a real dispatcher,
on both stores: once a newer holder of a lease has published, the older one is refused (ABORTED),
nothing of it stored, counted; producers without a lease send no fence and are never checked."""

from __future__ import annotations

import grpc
import pytest

from tcxhooks.v1 import dispatcher_service_pb2 as pb

from .conftest import Dispatchers, new_chain, ringing

LEASE = "monitor:https://pbx.example.com:5001"


def fence(number: int, lease: str = LEASE) -> pb.Fence:
    return pb.Fence(lease=lease, number=number)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_stale_fence_is_refused_and_nothing_of_it_stored(
    dispatchers: Dispatchers, kind: str, request: pytest.FixtureRequest
) -> None:
    store = {"url": request.getfixturevalue("pg_url")} if kind == "postgres" else {}
    dispatcher = dispatchers.make(store=store, webhook={"url": "http://127.0.0.1:9/crm"})
    chain = new_chain()
    first = dispatcher.call("Publish", pb.PublishRequest(event=ringing(chain, 1), fence=fence(2)))
    assert first.deliveries == 1
    # the holder before (number 1) is refused, alone and in a batch
    for call, message in (
        ("Publish", pb.PublishRequest(event=ringing(chain, 2), fence=fence(1))),
        ("PublishBatch", pb.PublishBatchRequest(events=[ringing(chain, 3)], fence=fence(1))),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            dispatcher.call(call, message)
        assert refused.value.code() == grpc.StatusCode.ABORTED
        assert f"stale fence {LEASE} #1" in (refused.value.details() or "")
    assert [d.call_id for d in dispatcher.deliveries(call_id=chain)] == [f"{chain}-1"]
    assert 'tcxhooks_dispatcher_published_total{outcome="stale"} 2.0' in dispatcher.metrics_text()

    # the current holder and its successor pass; other leases and unfenced producers are not affected
    dispatcher.call("PublishBatch", pb.PublishBatchRequest(events=[ringing(chain, 4)], fence=fence(2)))
    dispatcher.call("Publish", pb.PublishRequest(event=ringing(chain, 5), fence=fence(3)))
    dispatcher.call("Publish", pb.PublishRequest(event=ringing(chain, 6), fence=fence(1, "monitor:other")))
    dispatcher.call("Publish", pb.PublishRequest(event=ringing(chain, 7)))
    with pytest.raises(grpc.RpcError):
        dispatcher.call("Publish", pb.PublishRequest(event=ringing(chain, 8), fence=fence(2)))
    assert sorted(d.call_id for d in dispatcher.deliveries(call_id=chain)) == [f"{chain}-{n}" for n in (1, 4, 5, 6, 7)]

    # the highest number seen survives a restart
    dispatcher.stop()
    dispatcher.start()
    with pytest.raises(grpc.RpcError) as refused:
        dispatcher.call("Publish", pb.PublishRequest(event=ringing(chain, 9), fence=fence(2)))
    assert refused.value.code() == grpc.StatusCode.ABORTED
