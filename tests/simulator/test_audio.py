"""Recording audio: exact lengths, the wav format, and the fallbacks when espeak-ng or ffmpeg is missing."""

from __future__ import annotations

import array
import io
import math
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcxhooks.simulator import audio


@pytest.fixture
def no_espeak(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    audio._make_clip.cache_clear()
    yield
    audio._make_clip.cache_clear()


@pytest.mark.parametrize("seconds", [0, 0.5, 7.25, 61])
def test_exact_length(seconds: float, tmp_path: Path) -> None:
    path = tmp_path / "101" / "x.wav"
    size = audio.write_wav(path, seconds)
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() == round(seconds * 8000)
    assert size == path.stat().st_size and not list(tmp_path.rglob("*.part"))


def test_tones_when_espeak_is_missing(no_espeak: None) -> None:
    pcm = array.array("h", audio.pcm_of_length(3))
    assert len(pcm) == 24000
    loud = sum(1 for s in pcm if abs(s) > 500) / len(pcm)
    assert 0.2 < loud < 0.95  # syllables and pauses, not silence and not a constant tone


def test_linear_resample_halves_16k() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(array.array("h", (int(8000 * math.sin(i / 10)) for i in range(16000))).tobytes())
    out = array.array("h", audio._linear_resample(buffer.getvalue()))
    assert len(out) == 8000
    assert out[100] == int(8000 * math.sin(200 / 10))
