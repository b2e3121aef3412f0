"""Parsers of ini values shared by every service's settings (docs/config.md).

Each takes the text as written and returns the typed value, or raises `ValueError(expected)` whose
message completes "expected ..." in the one-line error the loader prints:

    poll_interval: float = key("5", duration, "seconds between XAPI status polls")
    # [pbx] poll_interval = 'soon': expected a duration such as 5, 5s, 250ms, 5m, 2h or 1d
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlparse

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """`5`, `5s`, `250ms`, `5m`, `2h`, `1d` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise ValueError("a duration such as 5, 5s, 250ms, 5m, 2h or 1d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def duration(text: str) -> float:
    return parse_duration(text)


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def whole(minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number within [minimum, maximum]."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"a whole number from {minimum}" + (f" to {maximum}" if maximum is not None else " up"))
        return value

    return parse


def choice(*options: str) -> Callable[[str], str]:
    """One of `options` (case-insensitive, returned in lower case)."""

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(" or ".join(options))
        return value

    return parse


def text(value: str) -> str:
    return value.strip()


def comma_list(value: str) -> tuple[str, ...]:
    """`a, b,,c` → ("a", "b", "c")."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def http_url(value: str) -> str:
    value = value.strip()
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("an http:// or https:// URL")
    return value


def base_url(value: str) -> str:
    """An http(s) URL without its trailing slash (paths are appended to it)."""
    return http_url(value).rstrip("/")


def optional(parse: Callable[[str], str]) -> Callable[[str], str]:
    """`parse`, or "" for an empty value."""

    def parse_optional(value: str) -> str:
        return parse(value) if value.strip() else ""

    return parse_optional


def host_port(value: str) -> str:
    value = value.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("host:port, e.g. 127.0.0.1:50051")
    return value


def time_zone(value: str) -> str:
    """An IANA time zone name (Europe/Moscow), or "" for the host's."""
    value = value.strip()
    if not value:
        return ""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA time zone such as Europe/Moscow, or empty for the host's") from None
    return value
