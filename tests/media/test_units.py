"""Small pure parts of media: purge schedule, wav header checks, mp3 duration, link signatures."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest

from tcxhooks.media.audio import Mp3Counter, mp3_info, parse_wav_header
from tcxhooks.media.errors import BadAudio
from tcxhooks.media.jobs import object_key
from tcxhooks.media.links import Links
from tcxhooks.media.retention import next_run

from .conftest import make_wav


def test_next_purge_is_the_next_local_purge_time() -> None:
    at = dt.time(3, 0)
    assert next_run(at, dt.datetime(2026, 11, 25, 2, 59)) == dt.datetime(2026, 11, 25, 3, 0)
    assert next_run(at, dt.datetime(2026, 11, 25, 3, 0)) == dt.datetime(2026, 11, 26, 3, 0)
    assert next_run(at, dt.datetime(2026, 12, 31, 23, 0)) == dt.datetime(2027, 1, 1, 3, 0)


def test_wav_headers(tmp_path: Path) -> None:
    data = make_wav(tmp_path / "s.wav", 0.5, channels=2).read_bytes()
    info = parse_wav_header(data)
    assert info is not None and (info.channels, info.sample_rate, info.data_offset) == (2, 8000, 44)
    assert parse_wav_header(data[:30]) is None  # needs more bytes
    for bad in (b"ID3\x04garbage-garbage", b"RIFF\x00\x00\x00\x00AVI LIST", data[:12] + b"data" + data[40:]):
        with pytest.raises(BadAudio):
            parse_wav_header(bad)
    broken_fmt = data[:22] + struct.pack("<H", 0) + data[24:]
    with pytest.raises(BadAudio, match="channels=0"):
        parse_wav_header(broken_fmt)


def test_mp3_duration_counts_frames() -> None:
    # MPEG-2.5 layer III, 8 kHz, 64 kbit/s, mono: 576 samples and 576 bytes per frame.
    header = bytes([0xFF, 0xE3, 0x88, 0xC4])
    frame = header + bytes(572)
    info = mp3_info(b"ID3\x04\x00\x00\x00\x00\x00\x02xx" + frame * 100 + b"TAG" + bytes(125))
    assert (info.frames, info.sample_rate, info.channels) == (100, 8000, 1)
    assert info.duration == pytest.approx(100 * 576 / 8000)
    with pytest.raises(BadAudio):
        mp3_info(b"no frames here" * 10)
    stream = b"ID3\x04\x00\x00\x00\x00\x00\x02xx" + frame * 100 + b"TAG" + bytes(125)
    for size in (1, 5, 577, 4096):  # fed as it streams out of ffmpeg, in any chunk size
        counter = Mp3Counter()
        for start in range(0, len(stream), size):
            counter.feed(stream[start : start + size])
        assert counter.result() == info


def test_links_are_stable_and_bound_to_leg_file_and_expiry() -> None:
    links = Links([b"k" * 32], "https://media.example.com/")
    url = links.url("251125184500_698-1", 2, 1_900_000_000)
    assert url == links.url("251125184500_698-1", 2, 1_900_000_000)
    assert url.startswith("https://media.example.com/r/251125184500_698-1/2.mp3?exp=1900000000&sig=")
    sig = url.rsplit("=", 1)[1]
    assert links.check("251125184500_698-1", 2, "1900000000", sig, now=1_800_000_000) == "ok"
    assert links.check("251125184500_698-1", 2, "1900000000", sig, now=1_900_000_000) == "expired"
    assert links.check("251125184500_698-2", 2, "1900000000", sig, now=0) == "tampered"
    assert links.check("251125184500_698-1", 1, "1900000000", sig, now=0) == "tampered"
    assert links.check("251125184500_698-1", 2, "1900000001", sig, now=0) == "tampered"
    assert links.check("251125184500_698-1", 2, "1900000000", "ä" + sig[1:], now=0) == "tampered"
    assert Links([b"other" * 8], "https://x").signature("251125184500_698-1", 2, 1_900_000_000) != sig


def test_a_rotated_link_key_keeps_the_links_signed_with_the_old_one_valid() -> None:
    old = Links([b"old-key" * 4], "https://media.example.com")
    sent = old.url("251125184500_698-1", 1, 1_900_000_000)
    rotated = Links([b"new-key" * 4, b"old-key" * 4], "https://media.example.com")
    exp, sig = (part.split("=", 1)[1] for part in sent.split("?", 1)[1].split("&"))
    assert rotated.check("251125184500_698-1", 1, exp, sig, now=1_800_000_000) == "ok"
    assert rotated.url("251125184500_698-1", 1, 1_900_000_000) != sent  # new links: the new key
    assert rotated.url("251125184500_698-1", 1, 1_900_000_000) == Links(
        [b"new-key" * 4], "https://media.example.com"
    ).url("251125184500_698-1", 1, 1_900_000_000)
    finished = Links([b"new-key" * 4], "https://media.example.com")  # the old key dropped
    assert finished.check("251125184500_698-1", 1, exp, sig, now=1_800_000_000) == "tampered"


def test_object_keys_are_stable_and_safe() -> None:
    key = object_key("251125184500_698-1", "101/[Иван]_79161234567-101_20251125184430(9).wav")
    assert key == object_key("251125184500_698-1", "101/[Иван]_79161234567-101_20251125184430(9).wav")
    assert key.startswith("251125184500_698-1/") and key.endswith(".mp3") and key.isascii()
    assert object_key("c-1", "rec-17") != object_key("c-1", "rec-18")
