"""The `yandex` backend: each mp3 of the leg goes to SpeechKit, then the transcript to YandexGPT.

Progress kept in the job (so a restart resumes, never resubmits a stored operation, docs/yandex.md §5):
`parts[i] = {operation_id, submitted_at, polls, next_poll, resubmitted, segments, duration}`,
then `summary`.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ..audio import MediaAudio
from ..backend import Outcome, Save, Wait
from ..config import AnalyticsConfig
from ..errors import permanent
from ..jobstore import AudioRef, Job
from ..metrics import AUDIO_SECONDS
from ..transcript import Segment, render_text, shifted
from .stt import OperationFailed, SpeechKit
from .summary import YandexGPT

log = logging.getLogger(__name__)


def first_poll_delay(duration: float) -> float:
    """About duration/6 (SpeechKit quotes ~10 s per audio minute), within 0.5–15 s."""
    return min(15.0, max(0.5, duration / 6.0))


def next_poll_delay(polls: int) -> float:
    """1, 1.6, 2.6, 4.1, 6.6, 10.5, then 15 s between status checks, with jitter so jobs spread out."""
    return min(15.0, 1.6 ** (polls - 1)) * random.uniform(0.85, 1.15)


class YandexBackend:
    name = "yandex"

    def __init__(self, config: AnalyticsConfig, client: httpx.AsyncClient, audio: MediaAudio) -> None:
        self.config = config
        self.audio = audio
        self.stt = SpeechKit(config, client)
        self.gpt = YandexGPT(config, client)

    async def step(self, job: Job, save: Save) -> Wait | Outcome:
        parts: list[dict[str, Any]] = job.progress.setdefault("parts", [{} for _ in job.audio])
        for source, part in zip(job.audio, parts, strict=False):
            if not part.get("operation_id") and "segments" not in part:
                await self._submit(job, source, part, save)
        waits = []
        for index, (source, part) in enumerate(zip(job.audio, parts, strict=False)):
            if "segments" in part:
                continue
            if part.get("next_poll", 0) > time.time():
                waits.append(part["next_poll"] - time.time())
                continue
            wait = await self._poll(job, index, source, part, save)
            if wait is not None:
                waits.append(wait)
        if waits:
            job.progress["stage"] = "waiting for SpeechKit operation " + ", ".join(
                p["operation_id"] for p in parts if p.get("operation_id") and "segments" not in p
            )
            await save()
            return Wait(max(0.2, min(waits)))
        segments, offset = [], 0.0
        for source, part in zip(job.audio, parts, strict=False):
            segments += shifted((Segment.from_json(s) for s in part["segments"]), offset)
            offset += source.duration or part.get("duration", 0.0)
        if "summary" not in job.progress:
            job.progress["stage"] = "summarising with YandexGPT"
            text = render_text(segments, self.config.channels)
            plain = "\n".join(s.text for s in sorted(segments, key=lambda s: s.start))
            language = job.progress.get("language") or self.config.language
            job.progress["summary"] = await self.gpt.summarize(text, plain, language)
            await save()
        return Outcome(segments, job.progress["summary"], job.progress.get("language") or self.config.language)

    async def _submit(self, job: Job, source: AudioRef, part: dict[str, Any], save: Save) -> None:
        job.progress["stage"] = f"reading recording file {source.file} from media"
        with tempfile.TemporaryDirectory(prefix="tcxhooks-analytics-") as tmp:
            path = Path(tmp) / "audio.mp3"
            await self.audio.download(job.call_id, source.file, path)
            audio = path.read_bytes()
        job.progress["stage"] = "submitting to SpeechKit"
        op_id = await self.stt.submit(audio)
        part.update(
            operation_id=op_id,
            submitted_at=time.time(),
            polls=0,
            next_poll=time.time() + first_poll_delay(source.duration),
        )
        await save()  # the id is stored before anything else may fail: never submit this audio twice
        log.info("submitted recording to SpeechKit", extra={"call_id": job.call_id, "operation_id": op_id})

    async def _poll(self, job: Job, index: int, source: AudioRef, part: dict[str, Any], save: Save) -> float | None:
        op_id = part["operation_id"]
        try:
            operation = await self.stt.operation(op_id)
        except OperationFailed as exc:
            if exc.worth_resubmitting and not part.get("resubmitted"):
                log.warning("%s; submitting the recording once more", exc, extra={"call_id": job.call_id})
                part.clear()
                part["resubmitted"] = True
                await save()
                return 0.2
            raise permanent(str(exc), f"operation_{exc.code}") from None
        if operation is None:
            part["polls"] = part.get("polls", 0) + 1
            delay = next_poll_delay(part["polls"])
            part["next_poll"] = time.time() + delay
            return delay
        segments, languages = await self.stt.results(op_id, stereo=source.channels >= 2)
        if languages and self.config.language == "auto":
            job.progress["language"] = languages[0]
        duration = source.duration or max((s.end for s in segments), default=0.0)
        part.update(segments=[s.to_json() for s in segments], duration=duration)
        await save()
        AUDIO_SECONDS.labels("yandex").inc(duration)
        try:
            await self.stt.delete(op_id)
        except Exception as exc:
            log.warning("could not delete SpeechKit results of %s: %s", op_id, exc, extra={"call_id": job.call_id})
        log.info("SpeechKit recognised part %d: %d phrases", index + 1, len(segments), extra={"call_id": job.call_id})
        return None
