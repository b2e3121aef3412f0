"""How a service's errors reach its gRPC callers: one status code per kind of error.

Each service draws its error tree in `services/<name>/errors.py`, rooted in `ServiceError`; every
class there names the status its RPCs answer with (`code`), so a service maps errors to codes in
one place. `ErrorInterceptor` (installed by `create_server`) answers every RPC that raised:

    ServiceError                 its `code`, with its message as the details
    the store out of reach       UNAVAILABLE: the caller should try again later
      (StoreError, a lost PostgreSQL connection, a busy or locked SQLite file)
    anything else                INTERNAL, logged with its traceback: a bug that trying again will
                                 not fix, so a producer must not take it for "try again"
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, NoReturn

import grpc
import psycopg
import psycopg_pool

from .store import StoreError

log = logging.getLogger(__name__)

# SQLite reports a busy or locked file and I/O failures as OperationalError, as it does a missing
# table or a syntax error (bugs); these phrases tell the first kind apart.
_SQLITE_UNAVAILABLE = ("locked", "busy", "disk i/o", "unable to open", "disk is full")


class ServiceError(Exception):
    """Base of every service's own errors; `code` is the gRPC status its RPCs answer with."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL


def store_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the store cannot be reached or used right now (rather than a bug)."""
    if isinstance(exc, (StoreError, psycopg.OperationalError, psycopg_pool.PoolTimeout)):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(phrase in str(exc).lower() for phrase in _SQLITE_UNAVAILABLE)
    return False


async def _answer(exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str) -> NoReturn:
    if isinstance(exc, ServiceError):
        await context.abort(exc.code, str(exc))
    if store_unavailable(exc):
        log.warning("%s: store unavailable: %s", method, exc)
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {str(exc).splitlines()[0][:200]}")
    log.error("%s failed", method, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); the service log has the details"
    )
    raise AssertionError("context.abort returned")


def _unary_response(inner: Callable[[Any, Any], Awaitable[Any]], method: str) -> Callable[[Any, Any], Awaitable[Any]]:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await inner(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _answer(exc, context, method)

    return handle


def _streamed_response(inner: Callable[[Any, Any], Any], method: str) -> Callable[[Any, Any], Any]:
    """A response-streaming behaviour: an async generator, or a coroutine that writes with context.write."""
    if not inspect.isasyncgenfunction(inner):
        return _unary_response(inner, method)

    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for item in inner(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _answer(exc, context, method)

    return handle


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Answers an RPC whose handler raised with the status of the module docstring."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        kinds = {
            "unary_unary": (grpc.unary_unary_rpc_method_handler, _unary_response),
            "stream_unary": (grpc.stream_unary_rpc_method_handler, _unary_response),
            "unary_stream": (grpc.unary_stream_rpc_method_handler, _streamed_response),
            "stream_stream": (grpc.stream_stream_rpc_method_handler, _streamed_response),
        }
        for kind, (make, wrap) in kinds.items():
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return make(
                    wrap(behaviour, method),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler
