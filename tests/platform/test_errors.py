"""What a gRPC caller reads when a handler raises: a service error's own code, UNAVAILABLE for a
store out of reach, INTERNAL for anything else (through a real server from create_server)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from tcxhooks.platform.errors import ServiceError
from tcxhooks.platform.grpc import create_server
from tcxhooks.platform.settings import ServicesConfig

SERVICE = "tcxhooks.test.Errors"


class Missing(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


def locked_sqlite(path: Path) -> sqlite3.OperationalError:
    """The error SQLite gives a writer while another connection holds the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(path, timeout=0)
    try:
        writer.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        writer.close()
        holder.close()
    raise AssertionError("the insert went through a held lock")


def missing_table() -> sqlite3.OperationalError:
    try:
        sqlite3.connect(":memory:").execute("SELECT * FROM deliveries")
    except sqlite3.OperationalError as exc:
        return exc
    raise AssertionError("a table appeared")


@pytest.fixture
async def call(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """call(exc, streaming=False) runs an RPC whose handler raises `exc` (after one message when streaming)."""
    raised: list[BaseException | None] = [None]

    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        assert raised[0] is not None
        raise raised[0]

    async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first"
        assert raised[0] is not None
        raise raised[0]

    async def aborts(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the handler's own answer")
        raise AssertionError("abort returned")

    def identity(raw: bytes) -> bytes:
        return raw

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, identity, identity),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, identity, identity),
        "Aborts": grpc.unary_unary_rpc_method_handler(aborts, identity, identity),
    }
    server, port = create_server(ServicesConfig(), "127.0.0.1:0")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    async def run(exc: BaseException | None, method: str = "Unary") -> tuple[grpc.StatusCode, str, list[bytes]]:
        raised[0] = exc
        received: list[bytes] = []
        try:
            if method == "Stream":
                async for item in channel.unary_stream(f"/{SERVICE}/Stream")(b""):
                    received.append(item)
            else:
                received.append(await channel.unary_unary(f"/{SERVICE}/{method}")(b""))
        except grpc.aio.AioRpcError as err:
            return err.code(), err.details() or "", received
        return grpc.StatusCode.OK, "", received

    yield run
    await channel.close()
    await server.stop(None)


async def test_a_service_error_answers_with_its_own_code(call: Callable[..., Any]) -> None:
    assert await call(Missing("no delivery 7")) == (grpc.StatusCode.NOT_FOUND, "no delivery 7", [])


async def test_an_unexpected_error_is_internal_and_logged_never_unavailable(
    call: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="tcxhooks.platform.errors"):
        code, details, _ = await call(KeyError("customer-secret-value"))
    assert code == grpc.StatusCode.INTERNAL
    assert "KeyError" in details and "customer-secret-value" not in details
    assert "Traceback" in caplog.text and "customer-secret-value" in caplog.text
    code, details, _ = await call(missing_table())  # a schema bug is no reason to retry
    assert code == grpc.StatusCode.INTERNAL and "OperationalError" in details


async def test_a_store_out_of_reach_is_unavailable(call: Callable[..., Any], tmp_path: Path) -> None:
    code, details, _ = await call(locked_sqlite(tmp_path / "store.db"))
    assert code == grpc.StatusCode.UNAVAILABLE and details == "store unavailable: database is locked"


async def test_streams_keep_what_was_sent_and_then_get_the_code(call: Callable[..., Any]) -> None:
    assert await call(Missing("gone"), "Stream") == (grpc.StatusCode.NOT_FOUND, "gone", [b"first"])
    code, _, received = await call(ValueError("bug"), "Stream")
    assert code == grpc.StatusCode.INTERNAL and received == [b"first"]


async def test_a_handler_that_aborts_itself_keeps_its_answer(call: Callable[..., Any]) -> None:
    assert await call(None, "Aborts") == (grpc.StatusCode.PERMISSION_DENIED, "the handler's own answer", [])
