"""Speech audio for the analytics tests (espeak-ng, a stereo call mp3) and the word error rate of a transcript."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import imageio_ffmpeg


def espeak(text: str, wav: Path, voice: str = "en-us", speed: int = 150) -> None:
    if not shutil.which("espeak-ng"):
        raise AssertionError("espeak-ng is needed to synthesise speech (apt-get install -y espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True, capture_output=True)


def stereo_call_mp3(operator: list[str], client: list[str], out: Path, rate: int = 8000, bitrate: str = "32k") -> float:
    """A stereo mp3 (phone-like 8 kHz, 32 kbit/s by default): operator phrases on the left, client on the
    right, taking turns. Returns its duration in seconds."""
    work = out.parent / (out.stem + "-parts")
    work.mkdir(exist_ok=True)
    inputs, filters, cursor = [], [], 0.0
    labels: dict[str, list[str]] = {"L": [], "R": []}
    turns = [
        (side, text) for pair in zip(operator, client, strict=False) for side, text in zip("LR", pair, strict=False)
    ]
    for index, (side, text) in enumerate(turns):
        wav = work / f"{index}.wav"
        espeak(text, wav)
        inputs += ["-i", str(wav)]
        filters.append(f"[{index}]adelay={int(cursor * 1000)}:all=1,apad=whole_dur=600[t{index}]")
        labels[side].append(f"[t{index}]")
        cursor += _wav_seconds(wav) + 0.6
    total = cursor + 0.5
    for side in "LR":
        filters.append("".join(labels[side]) + f"amix=inputs={len(labels[side])}:normalize=0[{side}]")
    filters.append(f"[L][R]amerge=inputs=2,aresample={rate}[out]")
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            *inputs,
            "-filter_complex",
            ";".join(filters),
            "-map",
            "[out]",
            "-t",
            f"{total:.2f}",
            "-ac",
            "2",
            "-ar",
            str(rate),
            "-b:a",
            bitrate,
            str(out),
        ],
        check=True,
    )
    return total


def _wav_seconds(wav: Path) -> float:
    import wave

    with wave.open(str(wav)) as handle:
        return handle.getnframes() / handle.getframerate()


DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; digits spelled one by one ("456" → four five six)."""
    spelled = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group(0))]} ", text.lower())
    return re.findall(r"[a-zа-яё']+", spelled)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words / reference length (after `words()` normalisation)."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))
