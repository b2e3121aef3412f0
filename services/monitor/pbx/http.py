"""The HTTP exchanges of the PBX client: aiohttp on the network, or a function answering in process.

    http = Network(base_url, ssl_context)          # what the monitor uses
    http = InProcess(handle)                       # a trace replay, tests: `async def handle(PbxRequest) -> PbxAnswer`
    answer = await http.exchange(PbxRequest("GET", "/xapi/v1/Users", {"$top": "5"}, {"Authorization": ...}))
    async with http.stream(request) as answer:     # a recording download, in chunks
        async for chunk in answer.chunks: ...

aiohttp rather than httpx: the monitor makes a REST GET per participant change (3CX sends no
`attached_data`), and httpx spent more CPU per request than everything else the monitor does with
an event (bench/latency.py; docs/performance.md). The dispatcher uses aiohttp too, so the product has
one HTTP client stack. No environment proxies (`trust_env` off), no cookies, no redirects followed.
A failure to get any answer (refused, reset, timeout, TLS) raises `Unreachable`.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from yarl import URL

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0  # the longest silence of a PBX in the middle of an answer


@dataclass(frozen=True)
class PbxRequest:
    method: str
    path: str  # below the base URL, e.g. "/xapi/v1/Users"
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class PbxAnswer:
    status: int
    body: bytes = b""
    content_type: str = ""

    @classmethod
    def json(cls, status: int, value: Any) -> PbxAnswer:
        return cls(status, json.dumps(value).encode(), "application/json")


@dataclass
class Streamed:
    """An answer whose body is read in chunks (`chunks` raises BrokenOff if the download breaks off)."""

    status: int
    content_type: str
    chunks: AsyncIterator[bytes]


class Unreachable(Exception):
    """No answer from the PBX; the text is the client library's reason (`Kind: message`)."""


class BrokenOff(Exception):
    """An answer's body stopped before its end."""


class Http(Protocol):
    async def exchange(self, request: PbxRequest) -> PbxAnswer: ...
    def stream(self, request: PbxRequest) -> contextlib.AbstractAsyncContextManager[Streamed]: ...
    async def close(self) -> None: ...


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Network:
    """aiohttp, one session (and its connection pool) per PbxClient, created on first use."""

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext | None) -> None:
        self.base = URL(base_url.rstrip("/"))
        self.ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT),
            )
        return self._session

    def _url(self, path: str) -> URL:
        return self.base.with_path(self.base.path.rstrip("/") + path, encoded=False)

    async def exchange(self, request: PbxRequest) -> PbxAnswer:
        try:
            async with self._client().request(
                request.method,
                self._url(request.path),
                params=request.params or None,
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
            ) as response:
                return PbxAnswer(response.status, await response.read(), response.headers.get("Content-Type", ""))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unreachable(_reason(exc)) from None

    @contextlib.asynccontextmanager
    async def stream(self, request: PbxRequest) -> AsyncIterator[Streamed]:
        try:
            response = await self._client().request(
                request.method,
                self._url(request.path),
                params=request.params or None,
                headers=request.headers,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unreachable(_reason(exc)) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    yield chunk
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise BrokenOff(_reason(exc)) from None

        try:
            yield Streamed(response.status, response.headers.get("Content-Type", ""), chunks())
        finally:
            response.release()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class InProcess:
    """Answers from a function in this process (a trace replay answers XAPI from the trace). A handler
    that raises Unreachable (or an OSError) plays a PBX that cannot be reached."""

    def __init__(self, handle: Callable[[PbxRequest], Awaitable[PbxAnswer]]) -> None:
        self.handle = handle

    async def exchange(self, request: PbxRequest) -> PbxAnswer:
        try:
            return await self.handle(request)
        except OSError as exc:
            raise Unreachable(_reason(exc)) from None

    @contextlib.asynccontextmanager
    async def stream(self, request: PbxRequest) -> AsyncIterator[Streamed]:
        answer = await self.exchange(request)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(answer.body), CHUNK):
                yield answer.body[start : start + CHUNK]

        yield Streamed(answer.status, answer.content_type, chunks())

    async def close(self) -> None:
        pass
