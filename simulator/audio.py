"""Recording audio: 8 kHz mono 16-bit PCM wav files of an exact length.

Real speech from `espeak-ng` (resampled to 8 kHz with the imageio-ffmpeg binary) when it is installed,
otherwise speech-like generated tones (voiced syllables with pauses). The clip is made once per process
and repeated/trimmed to each leg's talk time, so writing a file costs no subprocess. The simulator makes
it in the background as it starts: a real PBX has the file ready at hangup, and making the clip then
(~0.5 s idle, seconds on a busy machine) would publish the first recording late.
"""

from __future__ import annotations

import array
import functools
import logging
import math
import random
import shutil
import subprocess
import threading
import wave
from pathlib import Path

RATE = 8000
LOG = logging.getLogger("tcxhooks.simulator.audio")

DIALOGUE = (
    ("en-us", "Hello, thank you for calling. This is Ivan. How can I help you today?"),
    ("en-us+f3", "Hi. I would like to check the status of my order, number four five six."),
    ("en-us", "Of course. Your order was shipped yesterday and arrives on Friday."),
    ("en-us+f3", "Great, thank you very much. Goodbye."),
)


def _espeak(voice: str, text: str) -> bytes | None:
    """PCM at 8 kHz for one phrase, or None when espeak-ng or ffmpeg is unavailable."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return None
    try:
        wav = subprocess.run(
            [espeak, "-v", voice, "-s", "155", "--stdout", text], check=True, capture_output=True, timeout=30
        ).stdout
        return _resample_wav(wav)
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
        LOG.warning("espeak-ng failed (%s); using generated tones", exc)
        return None


def _resample_wav(wav: bytes) -> bytes:
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        command = [
            ffmpeg,
            "-v",
            "error",
            "-i",
            "pipe:0",
            "-af",
            "volume=0.7",
            "-ar",
            str(RATE),
            "-ac",
            "1",
            "-f",
            "s16le",
            "pipe:1",
        ]
        return subprocess.run(command, input=wav, check=True, capture_output=True, timeout=30).stdout
    except (ImportError, RuntimeError, OSError, subprocess.SubprocessError):
        return _linear_resample(wav)


def _linear_resample(wav: bytes) -> bytes:
    import io

    with wave.open(io.BytesIO(wav)) as reader:
        rate, width = reader.getframerate(), reader.getsampwidth()
        frames = reader.readframes(reader.getnframes())
    if width != 2:
        raise wave.Error(f"unexpected sample width {width}")
    source = array.array("h", frames)
    count = int(len(source) * RATE / rate)
    out = array.array("h", bytes(2 * count))
    for i in range(count):
        pos = i * rate / RATE
        j = int(pos)
        frac = pos - j
        nxt = source[j + 1] if j + 1 < len(source) else source[j]
        out[i] = int(source[j] * (1 - frac) + nxt * frac)
    return out.tobytes()


def _tones(seed: int) -> bytes:
    """Speech-like audio: syllables of a few harmonics with a pitch contour, separated by short pauses."""
    rng = random.Random(seed)
    out = array.array("h")
    for _ in range(24):
        length = rng.uniform(0.12, 0.3)
        pitch = rng.uniform(110, 220)
        n = int(length * RATE)
        for i in range(n):
            t = i / RATE
            envelope = math.sin(math.pi * i / n)
            f0 = pitch * (1 + 0.1 * math.sin(2 * math.pi * 3 * t))
            sample = sum(math.sin(2 * math.pi * f0 * h * t) / h for h in (1, 2, 3, 5))
            out.append(int(6000 * envelope * sample / 2))
        out.extend([0] * int(rng.uniform(0.05, 0.35) * RATE))
    return out.tobytes()


_CLIP_LOCK = threading.Lock()  # the start-up warm-up and a first write may ask at once: make it once


def clip() -> bytes:
    """The conversation clip (PCM s16le, 8 kHz): speech when possible, else tones; ends with a pause."""
    with _CLIP_LOCK:
        return _make_clip()


@functools.lru_cache(maxsize=1)
def _make_clip() -> bytes:
    pause = bytes(2 * int(0.4 * RATE))
    parts: list[bytes] = []
    for voice, text in DIALOGUE:
        pcm = _espeak(voice, text)
        if pcm is None:
            return _tones(1) + pause
        parts.append(pcm + pause)
    return b"".join(parts)


def pcm_of_length(seconds: float) -> bytes:
    """Exactly round(seconds * 8000) samples of conversation."""
    wanted = 2 * max(0, round(seconds * RATE))
    source = clip()
    repeats = wanted // len(source) + 1
    return (source * repeats)[:wanted]


def write_wav(path: Path, seconds: float) -> int:
    """Writes the wav (8 kHz, mono, 16-bit PCM); returns its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with wave.open(str(partial), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(pcm_of_length(seconds))
    partial.replace(path)
    return path.stat().st_size
