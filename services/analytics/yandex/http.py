"""Calls to Yandex Cloud REST APIs: auth headers, and errors mapped to retry decisions (docs/yandex.md §5)."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

import httpx

from tcxhooks.platform.logging import redact

from ..config import AnalyticsConfig
from ..errors import AnalyticsError, permanent, transient
from ..metrics import BACKEND_SECONDS

log = logging.getLogger(__name__)

GRPC_NAMES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
QUOTA_DELAY = 2.0


class TokenFile:
    """An IAM token that someone else keeps fresh in a file (`yc iam create-token` from a cron job,
    a sidecar, a mounted Secret): IAM tokens expire within 12 h, so the file is read again whenever
    its size or modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def token(self) -> str:
        try:
            status = os.stat(self.path)
            stamp = (status.st_mtime_ns, status.st_size)
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as handle:
                    token = handle.read().strip()
                if not token:
                    raise transient(f"[analytics] iam_token_file {self.path} is empty", "auth")
                if self._stamp is not None:
                    log.info("IAM token re-read from %s", self.path)
                redact(token)
                self._token, self._stamp = token, stamp
        except (OSError, UnicodeDecodeError) as exc:
            raise transient(f"cannot read [analytics] iam_token_file: {exc}", "auth") from None
        return self._token


_token_files: dict[str, TokenFile] = {}


def auth_headers(config: AnalyticsConfig) -> dict[str, str]:
    headers = {"x-client-request-id": str(uuid.uuid4())}
    if config.api_key:
        headers["Authorization"] = f"Api-Key {config.api_key}"
    elif config.iam_token_file:
        token_file = _token_files.setdefault(config.iam_token_file, TokenFile(config.iam_token_file))
        headers["Authorization"] = f"Bearer {token_file.token()}"
    else:
        headers["Authorization"] = f"Bearer {config.iam_token}"
    if config.folder_id:
        headers["x-folder-id"] = config.folder_id
    return headers


def rpc_status(response: httpx.Response) -> tuple[int, str]:
    """(code, message) of a google.rpc.Status body; (0, text snippet) when the body is not one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return 0, response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        try:
            code = int(body.get("code", 0))
        except (TypeError, ValueError):
            code = 0
        return code, str(body.get("message", ""))[:300]
    return 0, response.text[:200]


def classify(status: int, code: int, message: str, what: str, retry_after: str | None = None) -> AnalyticsError:
    """An HTTP error answer of Yandex as a job error (permanent or retryable, with a reason)."""
    name = GRPC_NAMES.get(code, "")
    text = f"{what}: HTTP {status}" + (f" {name}" if name else "") + (f": {message}" if message else "")
    if status == 401:
        return permanent(f"{text} (check [analytics] api_key / iam_token / iam_token_file)", "unauthenticated")
    if status == 403:
        return permanent(
            f"{text} (the service account needs ai.speechkit-stt.user / ai.languageModels.user)", "permission_denied"
        )
    if status == 429:
        return transient(text, "quota", delay=_retry_after(retry_after) or QUOTA_DELAY)
    if status == 500:
        return transient(text, "internal", max_attempts=5)
    if status in (502, 503, 504):
        return transient(text, "unavailable", delay=_retry_after(retry_after))
    if status == 404:
        return permanent(text, "not_found")
    return permanent(text, "invalid_argument" if status == 400 else f"http_{status}")


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


async def request(
    client: httpx.AsyncClient, config: AnalyticsConfig, method: str, url: str, what: str, operation: str, **kwargs: Any
) -> httpx.Response:
    """One authenticated call; non-2xx answers and network errors raise a classified AnalyticsError."""
    started = time.monotonic()
    try:
        response = await client.request(method, url, headers=auth_headers(config), **kwargs)
    except httpx.TransportError as exc:
        raise transient(f"{what}: network error {type(exc).__name__}: {exc}", "network") from None
    finally:
        BACKEND_SECONDS.labels("yandex", operation).observe(time.monotonic() - started)
    if response.status_code >= 400:
        code, message = rpc_status(response)
        log.debug(
            "%s answered HTTP %d",
            what,
            response.status_code,  # ids for Yandex support (docs/yandex.md §1)
            extra={
                "x_request_id": response.headers.get("x-request-id", ""),
                "x_server_trace_id": response.headers.get("x-server-trace-id", ""),
            },
        )
        if response.status_code == 401 and config.iam_token_file and not config.api_key:
            # the refresher may not have written the next token yet: wait for it (the job deadline bounds this)
            raise transient(
                f"{what}: HTTP 401: the IAM token in [analytics] iam_token_file {config.iam_token_file} "
                "was refused (expired, and the file not refreshed yet?)",
                "unauthenticated",
                delay=5.0,
            )
        raise classify(response.status_code, code, message, what, response.headers.get("retry-after"))
    return response
