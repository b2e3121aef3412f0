"""The one HTTP operation the dispatcher needs: POST a body, get status, Retry-After and a snippet.

    transport = open_transport("httptools", Timeouts(connect=5, total=15), limit=16)
    reply = await transport.post(url, body, headers)    # raises TransportError on no answer
    await transport.close()

Four implementations behind one protocol, chosen by `[dispatcher] transport`; bench/dispatch.py
measures each. `httptools` (the default) writes requests on the event loop's own keep-alive
sockets and parses answers with llhttp: ~20 µs of CPU per request, against 31–48 for `pyreqwest`
(reqwest in Rust, in its own thread), ~65 for `aiohttp` and ~800 for `httpx`. All keep connections
alive (HTTP/1.1 pool per endpoint), never follow redirects (a 3xx is just a failed answer), never
send back cookies a CRM set, never use proxy settings from the environment, send credentials
found in the URL as Basic auth, and apply connect and total timeouts.
"""
from __future__ import annotations

import asyncio
import base64
import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Mapping, Protocol
from urllib.parse import quote, unquote, urlsplit

import httptools

from tcxhooks.platform.config import redacted_url

SNIPPET = 1024
_URL_IN_TEXT = re.compile(r"https?://[^\s'\")]+", re.IGNORECASE)
_DRAIN = 64 * 1024
_IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    total: float = 15.0


@dataclass(frozen=True)
class Reply:
    status: int
    retry_after: str | None
    snippet: bytes


class TransportError(Exception):
    """No HTTP answer: refused, reset, DNS, TLS or timeout. `kind` is a short fixed label.

    Client libraries put the URL in their messages; it is shown redacted (a CRM's URL may carry a
    token or a password, and this text is logged and stored)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {_URL_IN_TEXT.sub(lambda found: redacted_url(found.group(0)), detail)}")
        self.kind = kind


class Transport(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply: ...
    async def close(self) -> None: ...


def _ssl_context(ca_file: str) -> ssl.SSLContext | None:
    if not ca_file:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(ca_file)
    return context


def _pem_certificates(ca_file: str) -> list[bytes]:
    """The certificates of a PEM bundle, one by one (reqwest adds roots one at a time)."""
    with open(ca_file, "rb") as bundle:
        found = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", bundle.read(), re.DOTALL)
    if not found:
        raise ValueError(f"{ca_file}: no PEM certificate in it")
    return found


class PyreqwestTransport:
    def __init__(self, timeouts: Timeouts, limit: int, ca_file: str = "") -> None:
        from pyreqwest.client import ClientBuilder
        from pyreqwest.exceptions import ConnectError, PyreqwestError, RequestTimeoutError

        self._errors = (RequestTimeoutError, ConnectError, PyreqwestError)
        builder = (ClientBuilder()
                   .max_connections(limit).pool_max_idle_per_host(limit).pool_idle_timeout(timedelta(seconds=60))
                   .connect_timeout(timedelta(seconds=timeouts.connect)).timeout(timedelta(seconds=timeouts.total))
                   .follow_redirects(False).default_cookie_store(False).no_proxy().http1_lower_case_headers()
                   .gzip(False).brotli(False).zstd(False).deflate(False))
        for certificate in _pem_certificates(ca_file) if ca_file else []:
            builder = builder.add_root_certificate_pem(certificate)
        self._client = builder.build()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        timeout, connect, failed = self._errors
        request = self._client.post(url).headers(headers).body_bytes(body).build_streamed()
        try:
            async with request as resp:
                reader = resp.body_reader
                snippet = bytes(await reader.read(SNIPPET) or b"")
                drained = len(snippet)
                while drained < _DRAIN and (chunk := await reader.read(_DRAIN)) is not None:
                    drained += len(chunk)
                return Reply(resp.status, resp.get_header("retry-after"), snippet)
        except timeout as exc:
            raise TransportError("timeout", _with_causes(exc) or "no answer in time") from None
        except connect as exc:
            raise TransportError("connect", _with_causes(exc)) from None
        except failed as exc:
            raise TransportError("http", _with_causes(exc)) from None

    async def close(self) -> None:
        await self._client.close()


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
            self._fail(TransportError("http" if self._begun else "connect",
                                      f"connection closed before an answer ({exc or 'by the peer'})"))

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
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~") + (f"?{quote(parts.query, safe='=&%+/:;,@!$()*~')}"
                                                                   if parts.query else "")
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
        self._tls = _ssl_context(ca_file) or ssl.create_default_context()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        target = self._targets.get(url) or self._targets.setdefault(url, _target(url))
        request = b"".join((target.head, "".join([f"{k}: {v}\r\n" for k, v in headers.items()]).encode("latin-1"),
                            b"content-length: %d\r\n\r\n" % len(body), body))
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
                    _Connection, target.host, target.port, ssl=self._tls if target.tls else None,
                    server_hostname=target.host if target.tls else None)
        except TimeoutError:
            raise TransportError("connect", f"{url}: no connection in {self._timeouts.connect:g}s") from None
        except OSError as exc:  # refused, reset, DNS, certificate (ssl.SSLError is an OSError)
            raise TransportError("connect", f"{url}: {exc}") from None
        return connection

    async def _exchange(self, target: _Target, connection: _Connection, request: bytes, deadline: float,
                        url: str) -> Reply:
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


def _with_causes(exc: Exception) -> str:
    """reqwest's message and its chain of causes ("… (Connect): tcp connect error: Connection refused")."""
    details = getattr(exc, "details", None) or {}
    causes = [cause["message"] for cause in details.get("causes") or [] if cause.get("message")]
    return ": ".join([getattr(exc, "message", str(exc)), *causes])


class AiohttpTransport:
    def __init__(self, timeouts: Timeouts, limit: int, ca_file: str = "") -> None:
        import aiohttp

        self._aiohttp = aiohttp
        context = _ssl_context(ca_file)
        connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=60,
                                         ssl=context if context is not None else True)
        # No cookie jar: a CRM's Set-Cookie must not ride along on later webhooks (and the jar costs
        # a lookup per request).
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect))

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        aiohttp = self._aiohttp
        try:
            async with self._session.post(url, data=body, headers=dict(headers), allow_redirects=False) as resp:
                snippet = await resp.content.read(SNIPPET)
                drained = len(snippet)
                while not resp.content.at_eof() and drained < _DRAIN:
                    chunk = await resp.content.read(_DRAIN)
                    if not chunk:
                        break
                    drained += len(chunk)
                if not resp.content.at_eof():
                    resp.close()
                return Reply(resp.status, resp.headers.get("Retry-After"), snippet)
        except TimeoutError as exc:
            raise TransportError("timeout", str(exc) or "no answer in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from None
        except aiohttp.ClientError as exc:
            raise TransportError("http", str(exc) or type(exc).__name__) from None
        except OSError as exc:
            raise TransportError("connect", str(exc)) from None

    async def close(self) -> None:
        await self._session.close()


class HttpxTransport:
    def __init__(self, timeouts: Timeouts, limit: int, ca_file: str = "") -> None:
        import httpx

        self._httpx = httpx
        context = _ssl_context(ca_file)
        refuse_all = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # as aiohttp: no cookies kept
        self._client = httpx.AsyncClient(
            cookies=refuse_all,
            timeout=httpx.Timeout(timeouts.total, connect=timeouts.connect),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=60),
            follow_redirects=False, verify=context if context is not None else True, trust_env=False)
        self._total = timeouts.total

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        import asyncio

        httpx = self._httpx
        try:
            async with asyncio.timeout(self._total):
                async with self._client.stream("POST", url, content=body, headers=dict(headers)) as resp:
                    snippet = b""
                    drained = 0
                    async for chunk in resp.aiter_raw():
                        if len(snippet) < SNIPPET:
                            snippet += chunk[: SNIPPET - len(snippet)]
                        drained += len(chunk)
                        if drained >= _DRAIN:
                            break
                    return Reply(resp.status_code, resp.headers.get("Retry-After"), snippet)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TransportError("timeout", str(exc) or "no answer in time") from None
        except httpx.ConnectError as exc:
            raise TransportError("connect", str(exc)) from None
        except httpx.HTTPError as exc:
            raise TransportError("http", str(exc) or type(exc).__name__) from None
        except OSError as exc:
            raise TransportError("connect", str(exc)) from None

    async def close(self) -> None:
        await self._client.aclose()


def open_transport(kind: str, timeouts: Timeouts, limit: int, ca_file: str = "") -> Transport:
    """The transport named by `[dispatcher] transport` (httptools, pyreqwest, aiohttp or httpx)."""
    kinds: dict[str, type[Transport]] = {"httptools": HttptoolsTransport, "pyreqwest": PyreqwestTransport,
                                         "aiohttp": AiohttpTransport, "httpx": HttpxTransport}
    return kinds[kind](timeouts, limit, ca_file)  # type: ignore[call-arg]
