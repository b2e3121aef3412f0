"""The one HTTP operation the dispatcher needs: POST a body, get status, Retry-After and a snippet.

    transport = open_transport("pyreqwest", Timeouts(connect=5, total=15), limit=16)
    reply = await transport.post(url, body, headers)    # raises TransportError on no answer
    await transport.close()

Three implementations behind one protocol, chosen by `[dispatcher] transport`; bench/dispatch.py
measures each. `pyreqwest` (the default) runs the HTTP work in Rust, off the event loop and the
GIL: the loop pays ~12 µs per request instead of aiohttp's ~60, which is what lets one dispatcher
process drain thousands of webhooks a second. All keep connections alive (HTTP/1.1 pool per
endpoint), never follow redirects (a 3xx is just a failed answer), never send back cookies a CRM
set, never use proxy settings from the environment, and apply connect and total timeouts.
"""
from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Mapping, Protocol

from tcxhooks.platform.config import redacted_url

SNIPPET = 1024
_URL_IN_TEXT = re.compile(r"https?://[^\s'\")]+", re.IGNORECASE)
_DRAIN = 64 * 1024


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
    """The transport named by `[dispatcher] transport` (pyreqwest, aiohttp or httpx)."""
    if kind == "httpx":
        return HttpxTransport(timeouts, limit, ca_file)
    if kind == "aiohttp":
        return AiohttpTransport(timeouts, limit, ca_file)
    return PyreqwestTransport(timeouts, limit, ca_file)
