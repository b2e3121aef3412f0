"""The delivery client against CRMs that answer in unusual, broken or hostile ways."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tcxhooks.dispatcher.transport import MAX_BODY_READ, SNIPPET, Timeouts, Transport, TransportError

HEADERS = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "webhook-id": "msg_1"}
Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]
ENDLESS = 64 * 1024 * 1024


class Crm:
    """A raw HTTP/1.1 server: `answer(request, writer)` writes whatever bytes a test wants."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.written = 0  # bytes an endless answer got out before the client hung up
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.answer(request, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def endless(self, writer: asyncio.StreamWriter, start: bytes, filler: bytes) -> None:
        """Writes `start`, then `filler` until ENDLESS bytes are out or the client hangs up."""
        writer.write(start)
        while self.written < ENDLESS:
            writer.write(filler)
            self.written += len(filler)
            await writer.drain()


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


def _client(total: float = 5.0, resolver: AbstractResolver | None = None) -> Transport:
    return Transport(Timeouts(connect=2.0, total=total), limit=4, resolver=resolver)


def _raw(answer: bytes) -> Answer:
    async def write(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()

    return write


def _plain(status: bytes, body: bytes, *headers: bytes) -> Answer:
    return _raw(
        b"HTTP/1.1 "
        + status
        + b"\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


async def _post_each(crm_of: Callable[[Answer], Awaitable[Crm]], *answers: Answer) -> list[Any]:
    client = _client()
    try:
        return [await client.post((await crm_of(answer)).url, b"a=1", HEADERS) for answer in answers]
    finally:
        await client.close()


async def test_answers_in_every_framing_are_read(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    async def until_close(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 202 Accepted\r\n\r\nqueued")
        await writer.drain()
        writer.close()

    replies = await _post_each(
        crm_of,
        _plain(b"200 OK", b"fine"),
        _raw(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\nRetry-After: 7\r\n\r\n"
            b"4\r\nbusy\r\n7\r\n, later\r\n0\r\n\r\n"
        ),
        until_close,
        _raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"),
    )
    assert [(r.status, r.snippet) for r in replies] == [
        (200, b"fine"),
        (503, b"busy, later"),
        (202, b"queued"),
        (201, b"ok"),
    ]
    assert replies[1].retry_after == "7"


async def test_hand_written_receivers_are_understood(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    """Bare LF line endings and a folded (obs-fold) header, as old stacks and hand-written receivers
    send them: the CRM took the webhook, so its answer must read as the 2xx / 503 it is."""
    bare_lf, folded = await _post_each(
        crm_of,
        _raw(b"HTTP/1.1 200 OK\nContent-Type: text/plain\ncontent-length: 2\n\nok"),
        _raw(
            b"HTTP/1.1 503 Busy\r\nX-Note: first part\r\n  second part\r\nRetry-After: 30\r\n"
            b"content-length: 4\r\n\r\nbusy"
        ),
    )
    assert (bare_lf.status, bare_lf.snippet) == (200, b"ok")
    assert (folded.status, folded.retry_after, folded.snippet) == (503, "30", b"busy")


async def test_retry_after_is_taken_only_from_the_final_answer(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    interim, trailer = await _post_each(
        crm_of,
        _raw(b"HTTP/1.1 103 Early Hints\r\nRetry-After: 99\r\n\r\nHTTP/1.1 503 Busy\r\ncontent-length: 2\r\n\r\nno"),
        _raw(b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n2\r\nno\r\n0\r\nRetry-After: 77\r\n\r\n"),
    )
    assert (interim.status, interim.retry_after, interim.snippet) == (503, None, b"no")
    assert (trailer.status, trailer.retry_after, trailer.snippet) == (503, None, b"no")


async def test_connections_are_kept_alive_and_a_long_answer_is_cut(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    long = bytes(range(256)) * 800  # 200 KB: only its first kilobyte is kept
    crm = await crm_of(_plain(b"200 OK", b"ok"))
    chatty = await crm_of(_plain(b"500 Internal Server Error", long))
    client = _client()
    try:
        statuses = [(await client.post(crm.url, b"n=%d" % n, HEADERS)).status for n in range(5)]
        cut = await client.post(chatty.url, b"a=1", HEADERS)
        after = await client.post(chatty.url, b"a=2", HEADERS)
    finally:
        await client.close()
    assert statuses == [200] * 5 and crm.connections == 1
    assert crm.requests[-1].endswith(b"n=4")
    assert cut.status == 500 and cut.snippet == long[:SNIPPET]
    assert after.status == 500 and after.snippet == long[:SNIPPET]


async def test_no_user_agent_or_content_type_but_the_callers(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    """aiohttp's own User-Agent and Content-Type never go out: a header the caller left out is not sent,
    one it gave is sent once, as given (in whatever case its name was written)."""
    crm = await crm_of(_plain(b"200 OK", b"ok"))
    sent = [
        {"webhook-id": "msg_1"},
        HEADERS,
        {**HEADERS, "user-agent": "tcxhooks/test"},
        {"User-Agent": "tcxhooks/test", "Content-Type": "text/plain"},
    ]
    client = _client()
    try:
        for headers in sent:
            assert (await client.post(crm.url, b"a=1", headers)).status == 200
    finally:
        await client.close()
    heads = [
        [line.split(b": ", 1) for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]] for request in crm.requests
    ]
    own = [
        [(name.lower(), value) for name, value in head if name.lower() in (b"user-agent", b"content-type")]
        for head in heads
    ]
    assert own == [
        [],
        [(b"content-type", b"application/x-www-form-urlencoded; charset=utf-8")],
        [(b"content-type", b"application/x-www-form-urlencoded; charset=utf-8"), (b"user-agent", b"tcxhooks/test")],
        [(b"user-agent", b"tcxhooks/test"), (b"content-type", b"text/plain")],
    ]


async def test_an_endless_header_is_refused_without_reading_it(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    crm: Crm

    async def endless_header(request: bytes, writer: asyncio.StreamWriter) -> None:
        await crm.endless(writer, b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536)

    crm = await crm_of(endless_header)
    client = _client()
    try:
        with pytest.raises(TransportError) as refused:
            await client.post(crm.url, b"a=1", HEADERS)
    finally:
        await client.close()
    assert refused.value.kind == "http" and "8190" in str(refused.value)
    # the client hung up after its 8 KB line limit: the CRM got out only what the socket buffers hold
    assert crm.written < ENDLESS // 4


async def test_an_endless_body_is_cut_and_its_answer_kept(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    crm: Crm

    async def endless_body(request: bytes, writer: asyncio.StreamWriter) -> None:
        chunk = b"x" * 65536
        await crm.endless(
            writer, b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        )

    crm = await crm_of(endless_body)
    client = _client()
    try:
        reply = await client.post(crm.url, b"a=1", HEADERS)
    finally:
        await client.close()
    assert (reply.status, reply.snippet) == (200, b"x" * SNIPPET)
    assert MAX_BODY_READ < ENDLESS // 4 and crm.written < ENDLESS // 4


async def test_a_post_the_crm_read_and_dropped_is_not_sent_again(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    """A CRM that reads a request and hangs up without answering, on a fresh connection and on a
    kept-alive one: one request each, a failed attempt for the worker to record, never a silent resend."""
    answered: set[asyncio.StreamWriter] = set()

    async def answer_once(request: bytes, writer: asyncio.StreamWriter) -> None:
        if writer in answered or b"n=0" in request:
            writer.close()
            return
        answered.add(writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    crm = await crm_of(answer_once)
    client = _client()
    outcomes: list[object] = []
    try:
        for n in range(3):
            try:
                outcomes.append((await client.post(crm.url, b"n=%d" % n, HEADERS)).status)
            except TransportError as exc:
                outcomes.append(exc.kind)
    finally:
        await client.close()
    assert outcomes == ["http", 200, "http"]
    assert [request.rsplit(b"\r\n\r\n", 1)[1] for request in crm.requests] == [b"n=0", b"n=1", b"n=2"]


async def test_credentials_in_the_url_go_as_basic_auth_and_never_into_errors(
    crm_of: Callable[[Answer], Awaitable[Crm]],
) -> None:
    crm = await crm_of(_plain(b"204 No Content", b""))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    client = _client()
    try:
        reply = await client.post(f"http://bot:s3cret@127.0.0.1:{crm.port}/hook?key=v%20w", b"a=1", HEADERS)
        with pytest.raises(TransportError) as refused:  # nobody listens there
            await client.post(f"http://bot:s3cret@127.0.0.1:{closed_port}/hook?token=s3cret", b"a=1", HEADERS)
    finally:
        await client.close()
    assert reply.status == 204
    head = crm.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /hook?key=v%20w HTTP/1.1"
    authorization = next(line for line in head if line.lower().startswith(b"authorization:"))
    assert authorization.split(b":", 1)[1].strip() == b"Basic " + base64.b64encode(b"bot:s3cret")
    assert refused.value.kind == "connect" and "s3cret" not in str(refused.value), refused.value


@pytest.mark.parametrize("port", ["99999", "8o8o"])
async def test_a_bad_port_is_a_clear_error(port: str) -> None:
    client = _client()
    try:
        with pytest.raises(TransportError) as bad:
            await client.post(f"http://crm.example:{port}/hook?token=s3cret", b"a=1", HEADERS)
    finally:
        await client.close()
    assert bad.value.kind == "http" and "not a usable URL" in str(bad.value) and "s3cret" not in str(bad.value)


class _Resolver(AbstractResolver):
    """Sends every name to 127.0.0.1 and remembers the names asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST
            )
        ]

    async def close(self) -> None:
        pass


async def test_international_host_names_are_encoded_by_idna_2008(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    """`faß.de` and `fass.de` are different domains (IDNA 2003 mapped ß to ss): signed bodies and
    credentials must go to the one configured."""
    crm = await crm_of(_plain(b"200 OK", b"ok"))
    resolver = _Resolver()
    client = _client(resolver=resolver)
    try:
        reply = await client.post(f"http://faß.de:{crm.port}/hook", b"a=1", HEADERS)
    finally:
        await client.close()
    assert reply.status == 200
    assert resolver.asked == ["xn--fa-hia.de"]
    head = crm.requests[0].split(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert b"host: xn--fa-hia.de:%d" % crm.port in head


async def test_no_answer_in_time_is_a_timeout(crm_of: Callable[[Answer], Awaitable[Crm]]) -> None:
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)

    crm = await crm_of(silent)
    client = _client(total=0.5)
    try:
        with pytest.raises(TransportError) as late:
            await client.post(crm.url, b"a=1", HEADERS)
    finally:
        await client.close()
    assert late.value.kind == "timeout"
