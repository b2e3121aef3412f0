"""Times and form fields in webhook bodies (services/dispatcher/encoding.py): the cached parts give the
same text as the uncached computation, across a zone's offset change and at the end of year 9999."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.dispatcher.encoding import form_field, iso_time

BERLIN = ZoneInfo("Europe/Berlin")
SUMMER_STARTS = 1774746000  # 2026-03-29T01:00:00Z: Berlin goes from +01:00 to +02:00


def stamp(seconds: int, millis: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=millis * 1_000_000)


def test_each_second_keeps_its_own_offset_across_a_change_of_summer_time() -> None:
    assert iso_time(stamp(SUMMER_STARTS - 1, 999), BERLIN) == "2026-03-29T01:59:59.999+01:00"
    assert iso_time(stamp(SUMMER_STARTS, 5), BERLIN) == "2026-03-29T03:00:00.005+02:00"
    assert iso_time(stamp(SUMMER_STARTS - 1, 1), BERLIN) == "2026-03-29T01:59:59.001+01:00"


def test_the_same_second_with_other_milliseconds_and_zones() -> None:
    assert iso_time(stamp(0, 7), ZoneInfo("UTC")) == "1970-01-01T00:00:00.007+00:00"
    assert iso_time(stamp(0, 7), ZoneInfo("Asia/Kolkata")) == "1970-01-01T05:30:00.007+05:30"


def test_a_moment_the_zone_would_carry_past_year_9999_is_shown_in_utc() -> None:
    last_hour = 253402300799 - 1799  # 9999-12-31T23:30:00Z
    assert iso_time(stamp(last_hour, 1), ZoneInfo("Europe/Moscow")) == "9999-12-31T23:30:00.001+00:00"


def test_a_form_field_is_quoted_alike_when_new_and_when_repeated() -> None:
    first = form_field("title", "Main line, 0:01:05")
    assert first == "title=Main+line%2C+0%3A01%3A05"
    assert form_field("title", "Main line, 0:01:05") == first
    assert form_field("links[]", "https://x/a b") == "links%5B%5D=https%3A%2F%2Fx%2Fa+b"
    assert form_field("caller_name", "Иван") == "caller_name=%D0%98%D0%B2%D0%B0%D0%BD"
