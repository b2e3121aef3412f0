"""Request size limits per RPC, and requests that are not the message their RPC takes.

    limits = RequestLimits({"PublishBatch": 8 * MIB}, "dispatcher")   # every other RPC: DEFAULT_REQUEST
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limits.largest), ...])

gRPC itself refuses (RESOURCE_EXHAUSTED, unread) any message above `largest`, the largest limit of the
service's RPCs; `RequestGuard` then holds each RPC to its own limit before parsing, and answers a
request that does not parse as its message INVALID_ARGUMENT. Both refusals are counted
(`tcxhooks_grpc_refused_total{reason="too_large"|"malformed"}`). Our requests are small: names, ids and
call events. Only the dispatcher's publishing RPCs carry more (transcripts, batches of events); audio
travels in answers (FetchRecording, FetchAudio), which the receiving client bounds.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from .metrics import GRPC_REFUSED

KIB = 1024
MIB = 1024 * KIB
DEFAULT_REQUEST = 256 * KIB
# What a client accepts in one answer message: the largest lists (deliveries with their attempts) and
# the audio chunks of FetchRecording / FetchAudio (64-256 KiB) fit well within it.
ANSWER_LIMIT = 16 * MIB


class RequestLimits:
    """The largest request each RPC of one service accepts, by method name (`Publish`), and the rest's."""

    def __init__(
        self, limits: Mapping[str, int] | None = None, service: str = "", default: int = DEFAULT_REQUEST
    ) -> None:
        self.limits = dict(limits or {})
        self.service = service
        self.default = default

    def of(self, method: str) -> int:
        """The limit of a full method path (`/tcxhooks.v1.DispatcherService/Publish`)."""
        return self.limits.get(method.rpartition("/")[2], self.default)

    @property
    def largest(self) -> int:
        return max([self.default, *self.limits.values()])


class _Refusal(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


def _parse(raw: bytes, limit: int, deserialize: Callable[[bytes], Any]) -> Any:
    if len(raw) > limit:
        raise _Refusal(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too_large",
            f"request of {len(raw)} bytes; this RPC takes at most {limit}",
        )
    try:
        return deserialize(raw)
    except (DecodeError, ValueError, TypeError) as exc:
        raise _Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            "malformed",
            f"the request is not this RPC's message ({type(exc).__name__})",
        ) from None


class RequestGuard(grpc.aio.ServerInterceptor):
    """Holds every request to its RPC's limit and parses it, refusing what does not fit or parse."""

    def __init__(self, limits: RequestLimits) -> None:
        self.limits = limits

    async def _refuse(self, refusal: _Refusal, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        GRPC_REFUSED.labels(self.limits.service, refusal.reason).inc()
        await context.abort(refusal.code, str(refusal))

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        limit, deserialize = self.limits.of(details.method), handler.request_deserializer
        guard = self

        async def one(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return _parse(raw, limit, deserialize)
            except _Refusal as refusal:
                await guard._refuse(refusal, context)

        async def each(raws: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async for raw in raws:
                yield await one(raw, context)

        def unary_request(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            if inspect.isasyncgenfunction(inner):

                async def streamed(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                    request = await one(raw, context)
                    async for item in inner(request, context):
                        yield item

                return streamed

            async def answered(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await inner(await one(raw, context), context)

            return answered

        def streamed_request(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            if inspect.isasyncgenfunction(inner):

                async def streamed(
                    raws: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
                ) -> AsyncIterator[Any]:
                    async for item in inner(each(raws, context), context):
                        yield item

                return streamed

            async def answered(raws: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await inner(each(raws, context), context)

            return answered

        kinds = {
            "unary_unary": (grpc.unary_unary_rpc_method_handler, unary_request),
            "unary_stream": (grpc.unary_stream_rpc_method_handler, unary_request),
            "stream_unary": (grpc.stream_unary_rpc_method_handler, streamed_request),
            "stream_stream": (grpc.stream_stream_rpc_method_handler, streamed_request),
        }
        for kind, (make, wrap) in kinds.items():
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return make(wrap(behaviour), request_deserializer=None, response_serializer=handler.response_serializer)
        return handler
