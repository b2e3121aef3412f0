"""The HTTP clients behind `[dispatcher] transport`, each against a CRM that answers in unusual ways."""
from __future__ import annotations

import asyncio
import base64
from typing import AsyncIterator, Awaitable, Callable

import pytest

from tcxhooks.dispatcher.transport import Timeouts, Transport, TransportError, open_transport
from tests.helpers.net import free_port

from .conftest import TRANSPORTS

HEADERS = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "webhook-id": "msg_1"}
Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


class Crm:
    """A raw HTTP/1.1 server: `answer(request, writer)` writes whatever bytes a test wants."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.answer(request, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
async def crm_of() -> AsyncIterator[Callable[[Answer], Awaitable[Crm]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> Crm:
        crm = Crm(answer)
        crm.server = await asyncio.start_server(crm._serve, "127.0.0.1", 0)
        servers.append(crm.server)
        return crm

    yield start
    for server in servers:
        server.close()


def _client(transport: str, total: float = 5.0) -> Transport:
    return open_transport(transport, Timeouts(connect=2.0, total=total), limit=4)


def _plain(status: bytes, body: bytes, *headers: bytes) -> Answer:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 " + status + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
                     + b"content-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
    return answer


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_answers_in_every_framing_are_read(transport: str, crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\nRetry-After: 7\r\n\r\n"
                     b"4\r\nbusy\r\n7\r\n, later\r\n0\r\n\r\n")

    async def until_close(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 202 Accepted\r\n\r\nqueued")
        await writer.drain()
        writer.close()

    async def interim_first(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")

    client = _client(transport)
    try:
        replies = [await client.post((await crm_of(answer)).url, b"a=1", HEADERS)
                   for answer in (_plain(b"200 OK", b"fine"), chunked, until_close, interim_first)]
    finally:
        await client.close()
    assert [(r.status, r.snippet) for r in replies] == [
        (200, b"fine"), (503, b"busy, later"), (202, b"queued"), (201, b"ok")]
    assert replies[1].retry_after == "7"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_connections_are_kept_alive_and_a_long_answer_is_cut(
        transport: str, crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    long = bytes(range(256)) * 800  # 200 KB: only its first kilobyte is kept
    crm = await crm_of(_plain(b"200 OK", b"ok"))
    chatty = await crm_of(_plain(b"500 Internal Server Error", long))
    client = _client(transport)
    try:
        statuses = [(await client.post(crm.url, b"n=%d" % n, HEADERS)).status for n in range(5)]
        cut = await client.post(chatty.url, b"a=1", HEADERS)
        after = await client.post(chatty.url, b"a=2", HEADERS)
    finally:
        await client.close()
    assert statuses == [200] * 5 and crm.connections == 1
    assert crm.requests[-1].endswith(b"n=4")
    assert cut.status == 500 and cut.snippet == long[:1024]
    assert after.status == 500 and after.snippet == long[:1024]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_credentials_in_the_url_go_as_basic_auth_and_never_into_errors(
        transport: str, crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    crm = await crm_of(_plain(b"204 No Content", b""))
    port = crm.url.split(":")[2].split("/")[0]
    client = _client(transport)
    try:
        reply = await client.post(f"http://bot:s3cret@127.0.0.1:{port}/hook?key=v%20w", b"a=1", HEADERS)
        with pytest.raises(TransportError) as refused:  # nobody listens there
            await client.post(f"http://bot:s3cret@127.0.0.1:{free_port()}/hook?token=s3cret", b"a=1", HEADERS)
    finally:
        await client.close()
    assert reply.status == 204
    head = crm.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /hook?key=v%20w HTTP/1.1"
    authorization = next(line for line in head if line.lower().startswith(b"authorization:"))
    assert authorization.split(b":", 1)[1].strip() == b"Basic " + base64.b64encode(b"bot:s3cret")
    assert refused.value.kind == "connect" and "s3cret" not in str(refused.value), refused.value


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_answer_in_time_is_a_timeout(transport: str, crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)

    crm = await crm_of(silent)
    client = _client(transport, total=0.5)
    try:
        with pytest.raises(TransportError) as late:
            await client.post(crm.url, b"a=1", HEADERS)
    finally:
        await client.close()
    assert late.value.kind == "timeout"


async def test_httptools_replaces_an_idle_connection_the_crm_dropped(
        crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    """A CRM that closes an idle connection just as it is reused (it read the request, then hung up
    without answering): the request goes once more on a new connection, no failed attempt."""
    answered: set[asyncio.StreamWriter] = set()

    async def answer_once(request: bytes, writer: asyncio.StreamWriter) -> None:
        if writer in answered:  # the connection's second request: hang up without a word
            writer.close()
            return
        answered.add(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    crm = await crm_of(answer_once)
    client = _client("httptools")
    try:
        replies = [await client.post(crm.url, b"n=%d" % n, HEADERS) for n in range(3)]
    finally:
        await client.close()
    assert [r.status for r in replies] == [200, 200, 200]
    assert crm.connections == 3 and len(crm.requests) == 5
