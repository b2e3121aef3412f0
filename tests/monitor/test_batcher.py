"""The monitor's PublishBatcher against a dispatcher gRPC server: coalescing, refusals, failures, fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tcxhooks.monitor.batcher import PublishBatcher, Refused, Unanswered
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


async def serve(servicer: Any, timeout: float = 5, stream_rest: float = 60) -> AsyncIterator[PublishBatcher]:
    server = grpc.aio.server()
    dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield PublishBatcher(
            dispatcher_service_pb2_grpc.DispatcherServiceStub(channel), timeout=timeout, stream_rest=stream_rest
        )
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


class StreamingDispatcher(BatchingDispatcher):
    """Answers PublishStream messages in order, as the dispatcher does: a message whose event id is in
    `refuse` ends the call with INVALID_ARGUMENT, one in `drop` with UNAVAILABLE, one in `hold` is never answered."""

    def __init__(
        self, refuse: set[str] = frozenset(), drop: set[str] = frozenset(), hold: set[str] = frozenset()
    ) -> None:  # type: ignore[assignment]
        super().__init__(refuse=refuse)
        self.drop = set(drop)
        self.hold = hold
        self.streams: list[list[str]] = []

    async def PublishStream(self, requests: Any, context: Any) -> AsyncIterator[Any]:
        received: list[str] = []
        self.streams.append(received)
        async for request in requests:
            event_id = request.event.event_id
            received.append(event_id)
            if event_id in self.refuse:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad event {event_id}")
            if event_id in self.drop:
                self.drop.discard(event_id)  # once: sent again, it is stored
                await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
            if event_id in self.hold:
                await asyncio.Event().wait()
            yield pb.PublishResponse(sequence=int(event_id[1:]) + 1, deliveries=1)


async def test_lone_events_go_as_messages_on_one_stream_and_a_backlog_in_batches() -> None:
    dispatcher = StreamingDispatcher()
    async for batcher in serve(dispatcher):
        lone = [await batcher.publish(event(n)) for n in range(3)]
        burst = await asyncio.gather(*(batcher.publish(event(n)) for n in range(10, 300)))
    assert [r.sequence for r in lone] == [1, 2, 3]
    assert [r.sequence for r in burst] == [n + 1 for n in range(10, 300)]
    assert dispatcher.streams[0][:3] == ["e0", "e1", "e2"]  # one call for the lone events
    assert len(dispatcher.batches) >= 1 and max(len(batch) for batch in dispatcher.batches) > 1
    sent = [e for batch in dispatcher.batches for e in batch] + [e for stream in dispatcher.streams for e in stream]
    assert sorted(sent) == sorted([f"e{n}" for n in range(3)] + [f"e{n}" for n in range(10, 300)])


async def test_an_event_the_stream_refuses_is_refused_alone_by_publish_batch_and_the_stream_rests() -> None:
    dispatcher = StreamingDispatcher(refuse={"e2"})
    async for batcher in serve(dispatcher):
        assert (await batcher.publish(event(1))).sequence == 2
        with pytest.raises(Refused, match="bad event"):
            await batcher.publish(event(2))
        assert (await batcher.publish(event(3))).sequence == 4
    assert dispatcher.streams == [["e1", "e2"]]  # the refusal ended the call
    assert dispatcher.batches == [["e2"], ["e3"]]  # sent again alone, refused there; then the stream rests


async def test_an_event_whose_stream_ended_goes_by_publish_batch_at_once_and_the_next_opens_another() -> None:
    dispatcher = StreamingDispatcher(drop={"e1"})
    async for batcher in serve(dispatcher, stream_rest=0):
        assert (await batcher.publish(event(1))).sequence == 2
        assert (await batcher.publish(event(2))).sequence == 3
    assert dispatcher.batches == [["e1"]]
    assert dispatcher.streams == [["e1"], ["e2"]]


async def test_an_unanswered_message_fails_after_the_timeout_and_the_next_goes_on_a_new_stream() -> None:
    dispatcher = StreamingDispatcher(hold={"e1"})
    async for batcher in serve(dispatcher, timeout=0.5):
        with pytest.raises(Unanswered, match="did not answer"):
            await batcher.publish(event(1))
        assert (await batcher.publish(event(2))).sequence == 3
    assert dispatcher.streams == [["e1"], ["e2"]]
    assert dispatcher.batches == []
