"""HTTP for CRM adapters: one aiohttp session per adapter, its rate limiter, timeouts, safe errors.

    api = JsonApi("b24", RateLimiter(2, 50), secrets=[webhook_code])
    api = JsonApi.of(settings)                       # the same from an adapter's settings
    answer = await api.send("POST", url, json_body={"CALL_ID": "…"}, realtime=True)
    answer.status, answer.body                       # decoded JSON (None when the body is not JSON)
    audio = await api.fetch(recording_link)          # our own media link: not metered by the CRM's limiter
    await api.close()

No redirects are followed and no cookies kept; proxy variables are ignored. A request that gets no
answer raises CrmError(verdict="retry"); what an answer's status means is each CRM client's call.
Error texts never hold a secret: a CRM URL may carry a token in its path (Bitrix24 webhook URLs),
so requests are named by what they do, never by URL, and the given secrets are masked anyway.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import CrmError
from .metrics import LIMITER_WAIT, REQUEST_SECONDS, REQUESTS
from .ratelimit import RateLimiter
from .settings import AdapterSettings

SNIPPET = 1024
LIMITED_TRIES = 4  # "too many requests" waited out in place before an attempt fails
MAX_BODY = 4 * 1024 * 1024  # CRM answers are small JSON; anything bigger is not one
MAX_FETCH = 200 * 1024 * 1024  # a recording to upload


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # decoded JSON; None when the body is empty or not JSON
    text: str  # the first 1 KB of the body as text (for error messages)
    headers: Mapping[str, str]


class JsonApi:
    @classmethod
    def of(cls, settings: AdapterSettings) -> JsonApi:
        """The client of one adapter: its rate limiter, timeouts, CA bundle, concurrency, secrets."""
        return cls(
            settings.name,
            RateLimiter(settings.rate, settings.burst),
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
            ca_file=settings.ca_file,
            concurrency=settings.concurrency,
            secrets=settings.secrets(),
        )

    def __init__(
        self,
        crm: str,
        limiter: RateLimiter | None,
        *,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        ca_file: str = "",
        concurrency: int = 16,
        secrets: Iterable[str] = (),
    ) -> None:
        self.crm = crm
        self.limiter = limiter
        self._secrets = [s for s in secrets if s]
        context: ssl.SSLContext | bool = True
        if ca_file:
            context = ssl.create_default_context()
            context.load_verify_locations(ca_file)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, ssl=context),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout),
        )

    def masked(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        realtime: bool = False,
    ) -> Answer:
        """One request, after the limiter lets it go. `what` names it in errors (never the URL)."""
        if self.limiter is not None:
            waited = time.perf_counter()
            await self.limiter.acquire(realtime)
            LIMITER_WAIT.labels(self.crm, "realtime" if realtime else "log").observe(time.perf_counter() - waited)
        data: bytes | None = None
        sent_headers = {"accept": "application/json", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            sent_headers["content-type"] = "application/json"
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, url, data=data if form is None else dict(form), headers=sent_headers, allow_redirects=False
            ) as response:
                raw = await response.content.read(MAX_BODY)
                answer = Answer(
                    response.status,
                    _decode(raw),
                    raw[:SNIPPET].decode("utf-8", "replace"),
                    {k.lower(): v for k, v in response.headers.items()},
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            REQUEST_SECONDS.labels(self.crm).observe(time.perf_counter() - started)
            detail = "timeout" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise CrmError(
                self.masked(f"{what}: no answer from the CRM ({detail})"), verdict="retry", code="network"
            ) from None
        REQUEST_SECONDS.labels(self.crm).observe(time.perf_counter() - started)
        return answer

    async def send_patiently(
        self,
        method: str,
        url: str,
        *,
        what: str,
        first_wait: float,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        realtime: bool = False,
    ) -> Answer:
        """`send`, with "too many requests" (429, 503) waited out in place a few times (`first_wait`
        seconds, then twice as long each time, the limiter paused meanwhile) before the answer is
        given back: a CRM whose budget other clients share refuses now and then, and each refusal
        passed on would cost the delivery an attempt."""
        for tries in range(LIMITED_TRIES):
            answer = await self.send(method, url, what=what, json_body=json_body, headers=headers, realtime=realtime)
            if answer.status not in (429, 503) or tries == LIMITED_TRIES - 1:
                return answer
            REQUESTS.labels(self.crm, "limited").inc()
            if self.limiter is not None:
                self.limiter.slow_down(first_wait * 2**tries)
        raise AssertionError("unreachable")

    async def fetch(self, url: str, *, what: str, limit: int = MAX_FETCH) -> bytes:
        """GET our own file (a recording link) for upload; raises CrmError(retry) when it fails."""
        try:
            async with self._session.get(url, allow_redirects=True) as response:
                if response.status != 200:
                    raise CrmError(
                        f"{what}: HTTP {response.status}", verdict="retry", status=response.status, code="fetch"
                    )
                body = await response.content.read(limit + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise CrmError(
                self.masked(f"{what}: cannot download ({type(exc).__name__})"), verdict="retry", code="fetch"
            ) from None
        if len(body) > limit:
            raise CrmError(f"{what}: larger than {limit} bytes", verdict="dead", code="fetch")
        return body

    async def close(self) -> None:
        await self._session.close()
        if self.limiter is not None:
            await self.limiter.close()


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
