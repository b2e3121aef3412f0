"""How values are written in webhook bodies: times (ISO-8601 in a zone, the JSON `timestamp` in UTC) and
the form encoding of each value (UTF-8 percent-encoding, booleans and `unknown` as words)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any
from urllib.parse import quote_plus

from google.protobuf.timestamp_pb2 import Timestamp


def iso_time(stamp: Timestamp, zone: dt.tzinfo | None) -> str:
    """ISO-8601 in `zone` (None: the host's) with its offset at that moment, to the millisecond:
    `2025-11-25T18:45:00.123+03:00`. A moment the zone would carry past year 9999 is shown in UTC."""
    try:
        when = (
            dt.datetime.fromtimestamp(stamp.seconds, zone)
            if zone
            else dt.datetime.fromtimestamp(stamp.seconds, dt.UTC).astimezone()
        )
    except (OverflowError, ValueError):
        when = dt.datetime.fromtimestamp(stamp.seconds, dt.UTC)
    text = when.isoformat()  # whole seconds: `2025-11-25T18:45:00+03:00`; the milliseconds go in after them
    return f"{text[:19]}.{stamp.nanos // 1_000_000:03d}{text[19:]}"


def utc_timestamp(stamp: Timestamp) -> str:
    """RFC 3339 UTC time (millisecond precision): the JSON body's `timestamp`."""
    when = dt.datetime.fromtimestamp(stamp.seconds, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{stamp.nanos // 1_000_000:03d}Z"


# what quote_plus leaves as it is: such a text (most ids, numbers and names) skips the quoting call
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
# a time (2025-11-25T18:45:00.123+03:00): only `:` and `+` to quote; each is new, so no use caching it
_TIME = re.compile(r"[0-9T.:+-]*").fullmatch


def form_quote(text: str) -> str:
    if _PLAIN(text):
        return text
    if _TIME(text):
        return text.replace(":", "%3A").replace("+", "%2B")
    return _quote_repeated(text)


@functools.lru_cache(maxsize=256)
def form_key(name: str) -> str:
    """A field name, quoted: the names are a few dozen fixed texts, each quoted once."""
    return form_quote(name)


@functools.lru_cache(maxsize=4096)
def _quote_repeated(text: str) -> str:
    """Field names and most values (DIDs, extensions, DID names, titles) repeat from event to event:
    each is quoted once, a repeat costs a cache lookup (the quoting was half of a body's CPU)."""
    return quote_plus(text, safe="", encoding="utf-8")


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "unknown" if value is None else str(value)
