"""Fetching a leg's mp3 from media's signed link (which may redirect to S3)."""
from __future__ import annotations

import os
from pathlib import Path

import httpx

from .errors import AnalyticsError, permanent, transient

MAX_AUDIO_BYTES = 512 * 1024 * 1024


async def download(client: httpx.AsyncClient, url: str, dest: Path) -> int:
    """Streams `url` into `dest` (following redirects); returns its size. Errors are classified."""
    safe = url.split("?", 1)[0]
    try:
        async with client.stream("GET", url, follow_redirects=True) as response:
            if response.status_code != 200:
                raise _status_error(response.status_code, safe)
            size = 0
            with open(dest, "wb") as handle:
                async for chunk in response.aiter_bytes(256 * 1024):
                    size += len(chunk)
                    if size > MAX_AUDIO_BYTES:
                        raise permanent(f"recording {safe} is larger than {MAX_AUDIO_BYTES} bytes", "audio_too_large")
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
    except httpx.TransportError as exc:
        raise transient(f"cannot download recording {safe}: {type(exc).__name__}: {exc}", "audio_network") from None
    if size == 0:
        raise permanent(f"recording {safe} is empty", "audio_empty")
    return size


def _status_error(status: int, url: str) -> AnalyticsError:
    message = f"recording download {url} answered HTTP {status}"
    if status == 429 or status >= 500:
        return transient(message, "audio_http", max_attempts=10)
    return permanent(message, "audio_http")
