"""Just enough of the wav and mp3 formats: the wav header (channels, emptiness) and mp3 duration.

info = parse_wav_header(first_bytes)   # None: need more bytes; BadAudio: not a usable wav
                                       # (UnsupportedFormat: a codec other than PCM or G.711)
seconds = mp3_duration(mp3_bytes)      # counts MPEG audio frames (no decoding)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import BadAudio, UnsupportedFormat

MAX_HEADER = 64 * 1024  # a wav whose data chunk starts later than this is not one we accept


# WAVE format tags a PBX records in: linear PCM and G.711 (A-law, µ-law). EXTENSIBLE names its
# codec in the first two bytes of its SubFormat GUID.
PCM, ALAW, MULAW, EXTENSIBLE = 0x0001, 0x0006, 0x0007, 0xFFFE
ACCEPTED_FORMATS = {PCM: "PCM", ALAW: "G.711 A-law", MULAW: "G.711 µ-law"}


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_rate: int
    format_tag: int  # the codec: one of ACCEPTED_FORMATS (an EXTENSIBLE header's SubFormat)
    block_align: int  # bytes per sample frame (all channels)
    data_offset: int  # where the audio bytes start
    data_size: int  # as declared (0xFFFFFFFF or 0 when the writer never finalised it)

    def seconds(self, audio_bytes: int) -> float:
        """The duration of `audio_bytes` of this wav's audio."""
        return audio_bytes // self.block_align / self.sample_rate


def parse_wav_header(head: bytes) -> WavInfo | None:
    """Parses RIFF/WAVE chunks up to the `data` chunk; None when `head` is too short to decide."""
    if len(head) < 12:
        if head and not (b"RIFF".startswith(head[:4]) or b"RF64".startswith(head[:4])):
            raise BadAudio("not a RIFF/WAVE file")
        return None
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise BadAudio("not a RIFF/WAVE file")
    offset, fmt = 12, None
    while True:
        if offset + 8 > len(head):
            if len(head) >= MAX_HEADER:
                raise BadAudio("wav header too long or without a data chunk")
            return None
        chunk_id, size = head[offset : offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        body = offset + 8
        if not chunk_id.isascii():
            raise BadAudio("corrupt wav chunk list")
        if chunk_id == b"fmt ":
            if size < 16:
                raise BadAudio("wav fmt chunk too short")
            if body + 16 > len(head):
                return None
            tag, channels, rate, _byte_rate, block_align = struct.unpack_from("<HHIIH", head, body)
            if tag == EXTENSIBLE:
                if size < 40:
                    raise BadAudio("wav fmt chunk too short for WAVE_FORMAT_EXTENSIBLE")
                if body + 26 > len(head):
                    return None
                tag = struct.unpack_from("<H", head, body + 24)[0]  # SubFormat GUID, first field
            if tag not in ACCEPTED_FORMATS:
                raise UnsupportedFormat(f"wav format tag 0x{tag:04x} is not PCM or G.711 (A-law, µ-law)")
            if not 1 <= channels <= 8 or not 1000 <= rate <= 384000 or not channels <= block_align <= 8 * channels:
                raise BadAudio(f"wav fmt chunk invalid (channels={channels}, rate={rate}, block_align={block_align})")
            fmt = (tag, channels, rate, block_align)
        elif chunk_id == b"data":
            if fmt is None:
                raise BadAudio("wav data chunk before its fmt chunk")
            return WavInfo(fmt[1], fmt[2], fmt[0], fmt[3], body, size)
        offset = body + size + (size & 1)
        if offset > MAX_HEADER:
            raise BadAudio("wav header too long or without a data chunk")


# --- mp3 ----------------------------------------------------------------------------------------

_BITRATES = {  # kbit/s by (version is MPEG-1, layer) → index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Mp3Info:
    frames: int
    sample_rate: int
    channels: int
    duration: float


def _frame(data: bytes, pos: int) -> tuple[int, int, int, int] | None:
    """(length, samples, rate, channels) of the frame at `pos`, or None when there is none."""
    if pos + 4 > len(data) or data[pos] != 0xFF or (data[pos + 1] & 0xE0) != 0xE0:
        return None
    b1, b2, b3 = data[pos + 1], data[pos + 2], data[pos + 3]
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate, 1 if b3 >> 6 == 3 else 2
    samples = 1152 if layer == 2 or mpeg1 else 576
    return samples // 8 * bitrate // rate + padding, samples, rate, 1 if b3 >> 6 == 3 else 2


class Mp3Counter:
    """Counts MPEG audio frames of an mp3 as it streams by (skipping ID3v2 and a Xing/Info frame)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._skip: int | None = None  # bytes of ID3v2 tag still to skip; None until known
        self._ended = False  # a trailing tag or garbage follows the audio
        self.frames = self.samples = self.rate = self.channels = 0

    def feed(self, data: bytes) -> None:
        if self._ended:
            return
        buffer, pos = self._buffer + data, 0
        if self._skip is None:
            if len(buffer) < 10:
                self._buffer = buffer
                return
            self._skip = 0
            if buffer[:3] == b"ID3":
                size = (buffer[6] << 21) | (buffer[7] << 14) | (buffer[8] << 7) | buffer[9]
                self._skip = 10 + size + (10 if buffer[5] & 0x10 else 0)
        if self._skip:
            pos = min(self._skip, len(buffer))
            self._skip -= pos
        while pos + 4 <= len(buffer):
            frame = _frame(buffer, pos)
            if frame is None:
                if self.frames:
                    self._ended = True
                    break
                pos += 1
                continue
            length, count, rate, channels = frame
            if length <= 4:
                self._ended = True
                break
            if pos + length > len(buffer):
                break  # the rest of this frame comes with the next data
            if self.frames or not (b"Xing" in buffer[pos : pos + 64] or b"Info" in buffer[pos : pos + 64]):
                self.frames += 1
                self.samples += count
                self.rate, self.channels = rate, channels
            pos += length
        self._buffer = b"" if self._ended else buffer[pos:]

    def result(self) -> Mp3Info:
        if not self.frames:
            raise BadAudio("the mp3 holds no audio frames")
        return Mp3Info(self.frames, self.rate, self.channels, self.samples / self.rate)


def mp3_info(data: bytes) -> Mp3Info:
    """Counts the MPEG audio frames of a whole mp3."""
    counter = Mp3Counter()
    counter.feed(data)
    return counter.result()
