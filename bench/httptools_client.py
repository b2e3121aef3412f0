"""A hand-written HTTP/1.1 client on the event loop's own sockets, answers parsed by httptools
(llhttp): the dispatcher's default client until aiohttp replaced it, kept as a reference for
bench/dispatch.py's bare loops. ~20 µs of CPU per request here against ~65 for aiohttp, but it
failed where aiohttp does not (bare LF line endings and folded headers read as malformed, endless
header values buffered with quadratic copying, IDNA 2003 host names, a dropped POST re-sent
unrecorded): the product does not use it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httptools

from tcxhooks.dispatcher.transport import SNIPPET, Reply, Timeouts, TransportError

_DRAIN = 64 * 1024
_IDLE_SECONDS = 60.0


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time; httptools (llhttp, the
    parser of uvicorn and Node.js) reads the answers."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[Reply] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._url = ""
        self.reusable = False
        self._begun = False
        self._status = 0
        self._retry_after: str | None = None
        self._snippet = bytearray()
        self._read = 0

    def exchange(self, request: bytes, deadline: float, url: str) -> asyncio.Future[Reply]:
        """Sends a request; the future resolves with its answer or fails with TransportError, at the
        latest at `deadline` (loop time). A timer handle, not `asyncio.timeout`: it costs a fraction."""
        assert self._transport is not None
        self._answer = self._loop.create_future()
        self._timer = self._loop.call_at(deadline, self._expire)
        self._url = url
        self.reusable = self._begun = False
        self._status, self._retry_after, self._snippet, self._read = 0, None, bytearray(), 0
        self._transport.write(request)
        return self._answer

    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        self.reusable = False
        self._stop_timer()
        if self._transport is not None:
            self._transport.close()

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():  # bytes nobody asked for: not a connection to reuse
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and its kinds
            self._fail(TransportError("http", f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._status:
            self._settle()  # an answer whose body ends with the connection
        else:
            # kind "connect" when no byte of an answer came: the request may be sent again on a new connection
            self._fail(
                TransportError(
                    "http" if self._begun else "connect", f"connection closed before an answer ({exc or 'by the peer'})"
                )
            )

    # --- httptools callbacks
    def on_message_begin(self) -> None:
        self._begun = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._status = 0 if 100 <= status < 200 else status  # an interim answer (100 Continue): the real one follows

    def on_body(self, body: bytes) -> None:
        if len(self._snippet) < SNIPPET:
            self._snippet += body[: SNIPPET - len(self._snippet)]
        self._read += len(body)
        if self._read >= _DRAIN:  # read enough: answer with it, and drop the connection with the rest
            self._settle()
            self.close()

    def on_message_complete(self) -> None:
        if self._status:
            self.reusable = self._parser.should_keep_alive()
            self._settle()

    def _settle(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(Reply(self._status, self._retry_after, bytes(self._snippet)))
            self._stop_timer()

    def _fail(self, error: TransportError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
            self._stop_timer()

    def _expire(self) -> None:
        self._timer = None
        self._fail(TransportError("timeout", f"{self._url}: no answer in time"))
        self.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@dataclass(frozen=True)
class _Target:
    """Where a URL's requests go, and the start of each request (request line, Host, Authorization)."""

    host: str
    port: int
    tls: bool
    head: bytes


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise TransportError("http", f"{url}: not an http(s) URL")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    name = host.encode("idna").decode() if not host.isascii() else host
    name = f"[{name}]" if ":" in name else name
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~") + (
        f"?{quote(parts.query, safe='=&%+/:;,@!$()*~')}" if parts.query else ""
    )
    lines = [f"POST {path} HTTP/1.1", f"host: {name}" + (f":{parts.port}" if parts.port else "")]
    if parts.username is not None:  # credentials in the URL: Basic auth, as curl and the other clients do
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append(f"authorization: Basic {base64.b64encode(credentials).decode()}")
    return _Target(host, port, tls, "".join(line + "\r\n" for line in lines).encode())


class HttptoolsTransport:
    """HTTP/1.1 on the event loop's own sockets, answers parsed by httptools.

    No second thread and no request objects: ~20 µs of CPU per request here in a bare loop, against
    31–48 for pyreqwest (its Python and Rust sides) and ~65 for aiohttp. Connections are kept per
    host (at most `limit` in use); an idle one the CRM closed as it was reused is replaced once."""

    def __init__(self, timeouts: Timeouts, limit: int, ca_file: str = "") -> None:
        self._loop = asyncio.get_running_loop()  # made by, and used from, one event loop
        self._timeouts = timeouts
        self._slots = asyncio.Semaphore(limit)
        self._idle: dict[tuple[str, int, bool], list[tuple[float, _Connection]]] = {}
        self._targets: dict[str, _Target] = {}
        self._tls = ssl.create_default_context(cafile=ca_file or None)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        target = self._targets.get(url) or self._targets.setdefault(url, _target(url))
        request = b"".join(
            (
                target.head,
                "".join([f"{k}: {v}\r\n" for k, v in headers.items()]).encode("latin-1"),
                b"content-length: %d\r\n\r\n" % len(body),
                body,
            )
        )
        async with self._slots:
            deadline = self._loop.time() + self._timeouts.total
            idle = self._take_idle(target)
            if idle is not None:
                try:
                    return await self._exchange(target, idle, request, deadline, url)
                except TransportError as exc:
                    if exc.kind != "connect":
                        raise
            connection = await self._connect(target, url, deadline)
            return await self._exchange(target, connection, request, deadline, url)

    def _take_idle(self, target: _Target) -> _Connection | None:
        idle = self._idle.get((target.host, target.port, target.tls))
        now = self._loop.time()
        while idle:
            since, connection = idle.pop()
            if connection.open() and now - since < _IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self, target: _Target, url: str, deadline: float) -> _Connection:
        loop = self._loop
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self._timeouts.connect)):
                _, connection = await loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=self._tls if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
        except TimeoutError:
            raise TransportError("connect", f"{url}: no connection in {self._timeouts.connect:g}s") from None
        except OSError as exc:  # refused, reset, DNS, certificate (ssl.SSLError is an OSError)
            raise TransportError("connect", f"{url}: {exc}") from None
        return connection

    async def _exchange(
        self, target: _Target, connection: _Connection, request: bytes, deadline: float, url: str
    ) -> Reply:
        try:
            reply = await connection.exchange(request, deadline, url)
        except BaseException:  # failed, timed out or cancelled: the connection's state is unknown
            connection.close()
            raise
        if connection.reusable and connection.open():
            self._idle.setdefault((target.host, target.port, target.tls), []).append((self._loop.time(), connection))
        else:
            connection.close()
        return reply

    async def close(self) -> None:
        for idle in self._idle.values():
            for _, connection in idle:
                connection.close()
        self._idle.clear()
