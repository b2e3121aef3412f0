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
    seconds, offset = _whole_second(stamp.seconds, zone)
    return f"{seconds}.{stamp.nanos // 1_000_000:03d}{offset}"


@functools.lru_cache(maxsize=1024)
def _whole_second(seconds: int, zone: dt.tzinfo | None) -> tuple[str, str]:
    """(`2025-11-25T18:45:00`, `+03:00`) of a moment: the events of a call, and of the calls at the same
    time, share their seconds, and the zone lookup is most of a time's cost."""
    try:
        when = (
            dt.datetime.fromtimestamp(seconds, zone)
            if zone
            else dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone()
        )
    except (OverflowError, ValueError):
        when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    text = when.isoformat()
    return text[:19], text[19:]


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
    return quote_plus(text, safe="", encoding="utf-8")


@functools.lru_cache(maxsize=4096)
def form_field(name: str, text: str) -> str:
    """`name=text`, both quoted. Most fields repeat from event to event (a call's number, DID, user, its
    title; the type's fixed words): each is quoted once, a repeat costs a cache lookup (quoting was half
    of a body's CPU)."""
    return f"{form_quote(name)}={form_quote(text)}"


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "unknown" if value is None else str(value)
