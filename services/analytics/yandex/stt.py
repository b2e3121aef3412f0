"""SpeechKit API v3 asynchronous recognition over REST (docs/yandex.md §2): submit, poll, fetch, delete.

op_id = await stt.submit(mp3_bytes)              # persist op_id before anything else
operation = await stt.operation(op_id)           # None while running
segments, languages = await stt.results(op_id, stereo)
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import defaultdict
from typing import Any

import httpx

from ..config import AnalyticsConfig
from ..errors import AnalyticsError, permanent, transient
from ..transcript import MONO, Segment
from .http import GRPC_NAMES, request

MAX_INLINE_BYTES = 44 * 1024 * 1024  # base64 of it stays under the 60 MB request limit (docs/yandex.md §4)
POLL_SPACING = 0.25  # ≤ 4 status checks per second from this process (quota: 5/s)
RESUBMIT_CODES = {4, 8, 13, 14}  # operation error codes worth one new submission (docs/yandex.md §5)
AUTO_LANGUAGES = ("ru-RU", "en-US")  # what `[analytics] language = auto` chooses between


class OperationFailed(Exception):
    """The recognition operation finished with an error (google.rpc.Status)."""

    def __init__(self, operation_id: str, code: int, message: str) -> None:
        super().__init__(f"SpeechKit operation {operation_id} failed with {code} {GRPC_NAMES.get(code, '')}: {message}")
        self.code = code

    @property
    def worth_resubmitting(self) -> bool:
        return self.code in RESUBMIT_CODES


class SpeechKit:
    def __init__(self, config: AnalyticsConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client
        self._pace_lock = asyncio.Lock()
        self._last_poll = 0.0

    def request_body(self, audio: bytes) -> dict[str, Any]:
        # `auto`: SpeechKit picks between Russian and English, as the offline engine does (docs/yandex.md §6)
        languages = list(AUTO_LANGUAGES) if self.config.language == "auto" else [self.config.language]
        return {
            "content": base64.b64encode(audio).decode("ascii"),
            "recognitionModel": {
                "model": "general",
                "audioFormat": {"containerAudio": {"containerAudioType": "MP3"}},
                "textNormalization": {
                    "textNormalization": "TEXT_NORMALIZATION_ENABLED",
                    "profanityFilter": False,
                    "literatureText": False,
                },
                "languageRestriction": {"restrictionType": "WHITELIST", "languageCode": languages},
                "audioProcessingType": "FULL_DATA",
            },
        }

    async def submit(self, audio: bytes) -> str:
        """Starts recognition of one mp3 (stereo files give two channels); returns the operation id."""
        if len(audio) > MAX_INLINE_BYTES:
            raise permanent(
                f"recording of {len(audio)} bytes exceeds the {MAX_INLINE_BYTES} bytes SpeechKit accepts inline",
                "audio_too_large",
            )
        response = await request(
            self.client,
            self.config,
            "POST",
            f"{self.config.stt_url}/stt/v3/recognizeFileAsync",
            "SpeechKit recognizeFileAsync",
            "stt_submit",
            json=self.request_body(audio),
        )
        operation = _json(response, "SpeechKit recognizeFileAsync")
        op_id = operation.get("id") if isinstance(operation, dict) else None
        if not isinstance(op_id, str) or not op_id:
            raise transient(
                "SpeechKit recognizeFileAsync answered without an operation id", "bad_response", max_attempts=3
            )
        return op_id

    async def operation(self, op_id: str) -> dict[str, Any] | None:
        """The finished operation, or None while it runs; raises OperationFailed if it ended with an error."""
        await self._pace()
        response = await request(
            self.client,
            self.config,
            "GET",
            f"{self.config.operation_url}/operations/{op_id}",
            f"operation {op_id}",
            "operation_poll",
        )
        operation = _json(response, f"operation {op_id}")
        if not isinstance(operation, dict) or not operation.get("done"):
            return None
        error = operation.get("error")
        if isinstance(error, dict) and error:
            raise OperationFailed(op_id, int(error.get("code", 2) or 2), str(error.get("message", "")))
        return operation

    async def results(self, op_id: str, stereo: bool) -> tuple[list[Segment], list[str]]:
        """The recognised phrases of a finished operation, and the language codes reported."""
        what = f"SpeechKit getRecognition {op_id}"
        try:
            response = await request(
                self.client,
                self.config,
                "GET",
                f"{self.config.stt_url}/stt/v3/getRecognition",
                what,
                "stt_results",
                params={"operationId": op_id},
            )
        except AnalyticsError as exc:
            if exc.reason == "not_found":  # just finished: results may lag a moment (docs/yandex.md §5)
                raise transient(str(exc), "results_not_ready", max_attempts=5) from None
            raise
        return parse_results(response.text, stereo)

    async def delete(self, op_id: str) -> None:
        """Removes the stored results (privacy); they would otherwise stay 3 days."""
        await request(
            self.client,
            self.config,
            "DELETE",
            f"{self.config.stt_url}/stt/v3/deleteRecognition",
            f"SpeechKit deleteRecognition {op_id}",
            "stt_delete",
            params={"operationId": op_id},
        )

    async def _pace(self) -> None:
        async with self._pace_lock:
            wait = self._last_poll + POLL_SPACING - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_poll = time.monotonic()


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise transient(f"{what}: answer is not JSON", "bad_response", max_attempts=3) from None


def iter_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a getRecognition body (one after another, newline-separated or not)."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= end:
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            raise permanent(
                "SpeechKit getRecognition answer is not a sequence of JSON objects", "bad_response"
            ) from None
        if isinstance(obj, dict):
            objects.append(obj)
    return objects


def _ms(value: Any) -> float:
    try:
        return int(value) / 1000.0
    except (TypeError, ValueError):
        return 0.0


def parse_results(text: str, stereo: bool) -> tuple[list[Segment], list[str]]:
    """Per (channelTag, finalIndex): finalRefinement.normalizedText if present, else the final's text."""
    finals: dict[tuple[str, int], tuple[float, float, str]] = {}
    refined: dict[tuple[str, int], str] = {}
    languages: defaultdict[str, float] = defaultdict(float)
    for obj in iter_objects(text):
        result = obj.get("result", obj)
        if not isinstance(result, dict):
            continue
        tag = str(result.get("channelTag", "0"))
        if isinstance(result.get("final"), dict):
            alternatives = result["final"].get("alternatives") or []
            if alternatives:
                best = alternatives[0]
                index = int((result.get("audioCursors") or {}).get("finalIndex", len(finals)) or 0)
                finals[(tag, index)] = (
                    _ms(best.get("startTimeMs")),
                    _ms(best.get("endTimeMs")),
                    str(best.get("text", "")),
                )
                for estimate in best.get("languages") or []:
                    languages[str(estimate.get("languageCode", ""))] += float(estimate.get("probability", 0) or 0)
        if isinstance(result.get("finalRefinement"), dict):
            refinement = result["finalRefinement"]
            alternatives = (refinement.get("normalizedText") or {}).get("alternatives") or []
            if alternatives:
                refined[(tag, int(refinement.get("finalIndex", 0) or 0))] = str(alternatives[0].get("text", ""))
    tags = {tag for tag, _ in finals}
    two_channels = stereo or len(tags) > 1
    segments = []
    for (tag, index), (start, end, final_text) in finals.items():
        channel = (int(tag) if tag.isdigit() else 0) if two_channels else MONO
        segments.append(Segment(channel, start, end, refined.get((tag, index), final_text)))
    ranked = [code for code, _ in sorted(languages.items(), key=lambda item: -item[1]) if code]
    return segments, ranked
