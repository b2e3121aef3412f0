"""Fuzz: recording files, through media's wav header parser (as the bytes arrive, in any chunking) and
its real transcoder (ffmpeg). Any file either becomes an mp3 or is refused with the media error its
job counts (`files_total{outcome}`: BadAudio, or the retried TransientError kinds) — never anything
else, never a hang."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from tcxhooks.media.audio import Mp3Counter, parse_wav_header
from tcxhooks.media.errors import BadAudio, MediaError, TransientError
from tcxhooks.media.transcode import Transcoder

from .profile import fuzz, run_bounded

TAGS = st.sampled_from([1, 6, 7, 0xFFFE, 0, 2, 0x55, 0x11]) | st.integers(0, 0xFFFF)


def chunk(ident: bytes, body: bytes, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return ident + struct.pack("<I", size) + body + (b"\0" if len(body) % 2 else b"")


fmt_bodies = st.builds(
    lambda tag, channels, rate, align, bits, sub: (
        struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
        + (struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", sub) + bytes(14) if tag == 0xFFFE else b"")
    ),
    TAGS,
    st.integers(0, 10),
    st.sampled_from([8000, 16000, 44100, 0, 999, 400000]) | st.integers(0, 2**32 - 1),
    st.integers(0, 20),
    st.sampled_from([8, 16, 24]),
    TAGS,
)
chunks = st.one_of(
    st.builds(chunk, st.just(b"fmt "), fmt_bodies | st.binary(max_size=40), st.none() | st.integers(0, 2**32 - 1)),
    st.builds(chunk, st.just(b"data"), st.binary(max_size=3000), st.none() | st.sampled_from([0, 0xFFFFFFFF, 1, 7])),
    st.builds(
        chunk,
        st.sampled_from([b"LIST", b"fact", b"JUNK", b"\xff\xfe\x00\x01"]),
        st.binary(max_size=60),
        st.none() | st.integers(0, 2**32 - 1),
    ),
)
wavs = st.builds(
    lambda riff, parts, tail: riff + struct.pack("<I", sum(map(len, parts)) + 4) + b"WAVE" + b"".join(parts) + tail,
    st.sampled_from([b"RIFF", b"RF64", b"RIFX", b"RI"]),
    st.lists(chunks, max_size=5),
    st.binary(max_size=200),
)
# well-formed headers of the codecs media accepts, over hostile audio and hostile declared sizes
playable = st.builds(
    lambda tag, channels, rate, audio, declared, tail: (
        b"RIFF"
        + struct.pack("<I", 36 + len(audio))
        + b"WAVE"
        + chunk(
            b"fmt ",
            struct.pack(
                "<HHIIHH",
                tag,
                channels,
                rate,
                rate * channels * (2 if tag == 1 else 1),
                channels * (2 if tag == 1 else 1),
                16 if tag == 1 else 8,
            ),
        )
        + chunk(b"data", audio, declared)
        + tail
    ),
    st.sampled_from([1, 6, 7]),
    st.integers(1, 2),
    st.sampled_from([8000, 16000]),
    st.binary(min_size=1, max_size=20000),
    st.none() | st.sampled_from([0, 0xFFFFFFFF, 4, 10**6]),
    st.binary(max_size=50),
)
wavs = playable | wavs
files = wavs | st.binary(max_size=400)
cuts = st.lists(st.integers(1, 64), min_size=1, max_size=8)


def pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at, sizes_left = [], 0, list(sizes)
    while at < len(data):
        size = sizes_left.pop(0) if sizes_left else len(data)
        out.append(data[at : at + size])
        at += size
    return out


@fuzz(examples=300)
@given(files, cuts)
def test_the_wav_header_parser_refuses_with_bad_audio_only_however_the_bytes_arrive(
    data: bytes, sizes: list[int]
) -> None:
    head = b""
    for piece in pieces(data, sizes):
        head += piece
        try:
            info = parse_wav_header(head)
        except BadAudio:
            return
        if info is not None:
            assert 12 <= info.data_offset <= len(head) + 8 and info.block_align >= info.channels >= 1
            assert info.seconds(len(head)) >= 0
            return


@fuzz(examples=300)
@given(
    st.binary(max_size=2000)
    | st.builds(
        lambda frames: b"".join(frames),
        st.lists(
            st.builds(
                lambda header, body: header + body,
                st.binary(min_size=4, max_size=4).map(lambda b: b"\xff\xfb" + b[2:]),
                st.binary(max_size=400),
            ),
            max_size=6,
        ),
    ),
    cuts,
)
def test_the_mp3_frame_counter_takes_any_bytes(data: bytes, sizes: list[int]) -> None:
    counter = Mp3Counter()
    for piece in pieces(data, sizes):
        counter.feed(piece)
    try:
        info = counter.result()
    except BadAudio:
        return
    assert info.frames > 0 and info.duration >= 0


async def transcode(data: bytes, sizes: list[int]) -> None:
    async def source() -> AsyncIterator[bytes]:
        for piece in pieces(data, sizes):
            yield piece

    try:
        mp3 = await Transcoder("32k", jobs=1).to_mp3(source(), accept_short=True, last_try=True)
    except (BadAudio, TransientError):
        return
    assert mp3.size > 0 and mp3.duration >= 0
    mp3.close()


@fuzz(examples=25, deadline_ms=None)
@given(wavs, cuts)
def test_any_recording_file_becomes_an_mp3_or_a_counted_refusal(data: bytes, sizes: list[int]) -> None:
    try:
        run_bounded(lambda: transcode(data, sizes), 30)
    except MediaError as exc:  # any other media error would be a failed job, not a skipped file
        raise AssertionError(f"{type(exc).__name__}: {exc}") from None
