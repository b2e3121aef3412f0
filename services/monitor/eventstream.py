"""Lone events to the dispatcher as messages on one long-lived PublishStream call.

    stream = EventStream(dispatcher_stub, timeout=15.0)
    response = await stream.publish(pb.PublishRequest(event=event, fence=fence))   # once it is durable

grpc.aio spends most of a lone event's way to the dispatcher on setting up its call: a unary call's
request reaches the dispatcher's handler ~0.3 ms after it is sent, a message on an open stream
~0.15 ms (docs/performance.md). The dispatcher answers a stream's messages in their order, each once
its event is durable, so answers are matched to requests by order. When the call ends (the
dispatcher restarts or refuses an event, a fence is stale, an answer takes longer than `timeout`),
every request still unanswered fails with the reason (StreamEnded, or TimeoutError for the
timeout) and the next publish opens a new call; the dispatcher de-duplicates an event sent again by
its id. A failed write does not tell why the call ended (grpc.aio reports INTERNAL when the
dispatcher closed it first), so no reason is more than "the call ended".
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import grpc

from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tcxhooks.v1 import dispatcher_service_pb2_grpc


class StreamEnded(Exception):
    """The call ended before it answered the request; the text says how, as far as it is known."""


class _Call:
    """One PublishStream call and the futures of its unanswered requests, oldest first."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.waiting: deque[asyncio.Future[pb.PublishResponse]] = deque()
        self.ended = False
        self.reader = asyncio.create_task(self._read(), name="monitor.publish-stream")

    async def _read(self) -> None:
        try:
            async for response in self.call:
                if not self.waiting:  # an answer to no request: out of step, start over
                    break
                future = self.waiting.popleft()
                if not future.done():  # done: its caller gave up waiting
                    future.set_result(response)
        except grpc.aio.AioRpcError as exc:
            self.end(StreamEnded(f"the dispatcher ended the PublishStream call: {exc.code().name} {exc.details()}"))
        self.end(StreamEnded("the dispatcher ended the PublishStream call before answering"))

    def end(self, error: BaseException) -> None:
        """Fails every unanswered request with `error` (the first reason given wins)."""
        self.ended = True
        self.call.cancel()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class EventStream:
    def __init__(self, stub: dispatcher_service_pb2_grpc.DispatcherServiceStub, timeout: float) -> None:
        self.stub = stub
        self.timeout = timeout
        self._call: _Call | None = None
        self._writing = asyncio.Lock()  # grpc.aio takes one write at a time

    async def publish(self, request: pb.PublishRequest) -> pb.PublishResponse:
        """The dispatcher's answer once the event is durable; raises StreamEnded when the call ended first,
        TimeoutError when no answer came within `timeout` (the call is then given up)."""
        future: asyncio.Future[pb.PublishResponse] = asyncio.get_running_loop().create_future()
        call: _Call | None = None
        try:
            async with asyncio.timeout(self.timeout):
                async with self._writing:
                    if self._call is None or self._call.ended:
                        self._call = _Call(self.stub.PublishStream())
                    call = self._call
                    call.waiting.append(future)  # before the write, so that its answer finds it
                    await _write(call, request)
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled():
                future.exception()  # a failed write's reason: the caller is told of the timeout instead
            reason = f"the dispatcher did not answer within {self.timeout:g} s"
            if call is not None:
                call.end(StreamEnded(reason))
            raise TimeoutError(reason) from None


async def _write(call: _Call, request: pb.PublishRequest) -> None:
    """Writes the request; a failed write ends the call (whether the message left is unknown)."""
    try:
        await call.call.write(request)
    except grpc.aio.AioRpcError as exc:
        call.end(StreamEnded(f"a write to the PublishStream call failed: {exc.code().name} {exc.details()}"))
    except asyncio.CancelledError:
        call.end(StreamEnded("a write to the PublishStream call was interrupted"))
        raise
    except Exception as exc:  # the call ended without an error status (InvalidStateError)
        call.end(StreamEnded(f"a write to the PublishStream call failed: {exc!r}"))
