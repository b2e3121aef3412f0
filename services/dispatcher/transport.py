"""The one HTTP operation a webhook needs: POST a body, get status, Retry-After and a snippet.

    transport = Transport(Timeouts(connect=5, total=15), limit=16)
    reply = await transport.post(url, body, headers)    # raises TransportError on no answer
    await transport.close()

aiohttp, a well-kept client that reads what CRMs really answer (bare LF line endings, folded
headers, 1xx before the answer), behind the few rules webhooks need: connections kept alive (an
HTTP/1.1 pool per endpoint), no redirects followed (a 3xx is a failed answer), no cookies kept, no
proxy settings from the environment, credentials found in the URL sent as Basic auth, host names
encoded by IDNA 2008 (`faß.de` is `xn--fa-hia.de`, never `fass.de`), connect and total timeouts,
and limits on what a CRM can make us read: a header line of at most 8 KB, 128 header lines, and
of the body the first 1 KB kept and at most 64 KB read before the connection is dropped. A POST is
never sent again by the client itself: each try is one attempt the worker records.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from tcxhooks.platform.config import redacted_url, redacted_urls

SNIPPET = 1024
MAX_BODY_READ = 64 * 1024
MAX_HEADER_LINE = 8190
MAX_HEADERS = 128
_IDLE_SECONDS = 60.0
# aiohttp adds a User-Agent and a Content-Type of its own to a request without them: not ours. The
# session skips nothing itself (its skip list costs ~5 µs a request, copies of the headers); a post
# whose headers lack one of them asks aiohttp to skip both.
_OWN_HEADERS = ("User-Agent", "Content-Type")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    total: float = 15.0


class Reply(NamedTuple):  # one per webhook: a tuple is built faster than a frozen dataclass
    status: int
    retry_after: str | None
    snippet: bytes


class TransportError(Exception):
    """No HTTP answer: refused, reset, DNS, TLS, malformed or timeout. `kind` is a short fixed label.

    Client libraries put the URL in their messages; it is shown redacted (a CRM's URL may carry a
    token or a password, and this text is logged and stored)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {redacted_urls(detail)}")
        self.kind = kind


def _ssl_context(ca_file: str) -> ssl.SSLContext | bool:
    if not ca_file:
        return True  # the system's CAs
    context = ssl.create_default_context()
    context.load_verify_locations(ca_file)
    return context


class Transport:
    def __init__(
        self, timeouts: Timeouts, limit: int, ca_file: str = "", resolver: AbstractResolver | None = None
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=limit, keepalive_timeout=_IDLE_SECONDS, ssl=_ssl_context(ca_file), resolver=resolver
        )
        # No cookie jar: a CRM's Set-Cookie must not ride along on later webhooks (and the jar costs
        # a lookup per request).
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            max_headers=MAX_HEADERS,
            timeout=aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect),
        )
        self._urls: dict[str, URL] = {}

    def _url(self, url: str) -> URL:
        """The URL parsed once per endpoint (yarl encodes an international host name by IDNA 2008)."""
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                parsed = URL(url)
                parsed.port  # noqa: B018 - a bad port raises here, not on every attempt
            except ValueError as exc:
                raise TransportError("http", f"{redacted_url(url)}: not a usable URL ({exc})") from None
            self._urls[url] = parsed
        return parsed

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        target = self._url(url)
        skip = None if "user-agent" in headers and "content-type" in headers else _OWN_HEADERS
        try:
            async with self._session.post(
                target, data=body, headers=headers, skip_auto_headers=skip, allow_redirects=False
            ) as resp:
                snippet = _read_arrived(resp) if resp.content.is_eof() else await _read(resp)
                return Reply(resp.status, resp.headers.get("Retry-After"), snippet)
        except TimeoutError as exc:
            raise TransportError("timeout", str(exc) or "no answer in time") from None
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from None
        except aiohttp.ClientError as exc:  # disconnected before an answer, a malformed or oversized one
            raise TransportError("http", str(exc) or type(exc).__name__) from None
        except OSError as exc:
            raise TransportError("connect", str(exc)) from None

    async def close(self) -> None:
        await self._session.close()


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    """The answer's first SNIPPET bytes, reading at most MAX_BODY_READ; the connection is dropped
    when more is left (or the body broke off: the status is the answer all the same)."""
    content = resp.content
    snippet = b""
    read = 0
    try:
        while read < MAX_BODY_READ:
            chunk = await content.read(MAX_BODY_READ - read)
            if not chunk:
                return snippet
            if len(snippet) < SNIPPET:
                snippet += chunk[: SNIPPET - len(snippet)]
            read += len(chunk)
            if content.at_eof():  # the usual short answer: read in one go
                return snippet
    except aiohttp.ClientPayloadError:
        pass
    resp.close()
    return snippet


def _read_arrived(resp: aiohttp.ClientResponse) -> bytes:
    """_read of an answer that has arrived whole (the usual short one, in the packet of its head),
    without a coroutine to await."""
    content = resp.content
    try:
        body = content.read_nowait(MAX_BODY_READ)
        if content.at_eof():
            return body[:SNIPPET]
    except aiohttp.ClientPayloadError:
        body = b""
    resp.close()
    return body[:SNIPPET]
