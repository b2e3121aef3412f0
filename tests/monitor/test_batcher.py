"""The monitor's PublishBatcher against a dispatcher gRPC server: coalescing, refusals, failures, fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tcxhooks.monitor.batcher import PublishBatcher, Refused
from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc, events_pb2


def event(n: int) -> events_pb2.Event:
    return events_pb2.Event(event_id=f"e{n}", chain=f"c{n}")


class BatchingDispatcher(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    """Answers PublishBatch after a short pause (so that publishes gather), refusing ids in `refuse`."""

    def __init__(self, refuse: set[str] = frozenset(), fail: int = 0) -> None:  # type: ignore[assignment]
        self.batches: list[list[str]] = []
        self.refuse = refuse
        self.fail = fail

    async def PublishBatch(self, request: Any, context: Any) -> Any:
        self.batches.append([e.event_id for e in request.events])
        if self.fail:
            self.fail -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "store down")
        await asyncio.sleep(0.05)
        return pb.PublishBatchResponse(
            outcomes=[
                pb.PublishOutcome(refused="bad event")
                if e.event_id in self.refuse
                else pb.PublishOutcome(stored=pb.PublishResponse(sequence=int(e.event_id[1:]) + 1, deliveries=1))
                for e in request.events
            ]
        )


class UnaryOnlyDispatcher(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    """An older dispatcher: Publish only (PublishBatch answers UNIMPLEMENTED)."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def Publish(self, request: Any, context: Any) -> Any:
        self.published.append(request.event.event_id)
        return pb.PublishResponse(sequence=1, deliveries=1)


async def serve(servicer: Any) -> AsyncIterator[PublishBatcher]:
    server = grpc.aio.server()
    dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield PublishBatcher(dispatcher_service_pb2_grpc.DispatcherServiceStub(channel), timeout=5)
    await server.stop(None)


async def test_concurrent_publishes_share_batches_and_each_gets_its_answer() -> None:
    dispatcher = BatchingDispatcher()
    async for batcher in serve(dispatcher):
        replies = await asyncio.gather(*(batcher.publish(event(n)) for n in range(300)))
    assert [r.sequence for r in replies] == [n + 1 for n in range(300)]
    assert sorted(e for batch in dispatcher.batches for e in batch) == sorted(f"e{n}" for n in range(300))
    assert len(dispatcher.batches) <= 4  # 300 events: the first at once, the rest gathered (256 per call at most)
    assert max(len(batch) for batch in dispatcher.batches) <= 256


async def test_a_refused_event_fails_alone_and_a_failed_call_fails_its_batch() -> None:
    dispatcher = BatchingDispatcher(refuse={"e2"}, fail=1)
    async for batcher in serve(dispatcher):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await batcher.publish(event(1))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        results = await asyncio.gather(*(batcher.publish(event(n)) for n in (1, 2, 3)), return_exceptions=True)
    assert [getattr(r, "sequence", None) for r in results] == [2, None, 4]
    assert isinstance(results[1], Refused) and "bad event" in str(results[1])


async def test_an_older_dispatcher_without_publish_batch_gets_unary_publishes() -> None:
    dispatcher = UnaryOnlyDispatcher()
    async for batcher in serve(dispatcher):
        replies = await asyncio.gather(*(batcher.publish(event(n)) for n in range(5)))
        replies.append(await batcher.publish(event(5)))
    assert len(replies) == 6 and all(r.sequence == 1 for r in replies)
    assert sorted(dispatcher.published) == [f"e{n}" for n in range(6)]
