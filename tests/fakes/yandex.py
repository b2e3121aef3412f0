"""A local fake of the Yandex Cloud endpoints the analytics service uses (docs/yandex.md).

    with FakeYandex(api_key="k", folder_id="b1g") as fake:
        fake.transcript = {"0": [Phrase(0, 1500, "hello", "Hello.")]}
        ... point [analytics] stt_url / operation_url / llm_url at fake.url ...
        fake.requests_to("/stt/v3/recognizeFileAsync")[0].json

Faithful to the documented shapes: SpeechKit v3 `recognizeFileAsync` (Operation answer),
`operations/{id}` (done / error as google.rpc.Status), `getRecognition` (one `{"result": …}`
object per line with final / finalRefinement / eouUpdate / statusCode events, int64 as strings),
`deleteRecognition`, and Foundation Models `completion` (wrapped `result.alternatives`). Errors
are google.rpc.Status bodies: 401 code 16 for a bad key, 429 code 8 for quota, 400 code 3 for a
malformed request, 404 code 5 for an unknown operation.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers.app_thread import AppThread

AUDIO_TYPES = {"WAV", "OGG_OPUS", "MP3"}


@dataclass(frozen=True)
class Phrase:
    start_ms: int
    end_ms: int
    text: str  # the raw `final` text
    normalized: str = ""  # the `finalRefinement` text (none sent when empty)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Operation:
    id: str
    audio: bytes
    polls_left: int
    error: dict[str, Any] | None
    created: str
    done: bool = False


@dataclass
class FakeYandex:
    api_key: str = "test-api-key-0123456789"
    iam_token: str = ""
    folder_id: str = "b1gfakefolder"
    language: str = "en-US"
    transcript: dict[str, list[Phrase]] = field(default_factory=dict)
    polls_until_done: int = 1  # answers with done=false before done=true
    never_done: bool = False
    operation_errors: list[dict[str, Any] | None] = field(default_factory=list)  # per submission, in order
    gpt_text: str = "The caller asked about an order; the operator confirmed delivery on Monday."
    gpt_status: str = "ALTERNATIVE_STATUS_FINAL"

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self.operations: dict[str, _Operation] = {}
        self._failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = AppThread("fake-yandex")
        self.url = ""

    # --- test controls ------------------------------------------------------------------------

    def fail_next(self, path_suffix: str, status: int, times: int = 1, retry_after: str = "") -> None:
        """The next `times` requests whose path ends with `path_suffix` get `status` with a Status body."""
        code = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 503: 14, 504: 4}.get(status, 2)
        messages = {
            8: "Resource exhausted: quota of asynchronous recognition requests",
            13: "Internal error",
            14: "Service unavailable",
        }
        headers = {"Retry-After": retry_after} if retry_after else {}
        body = {"code": code, "message": messages.get(code, "error"), "details": []}
        with self._lock:
            self._failures.setdefault(path_suffix, []).extend([(status, body, headers)] * times)

    def requests_to(self, path_part: str, method: str = "") -> list[Recorded]:
        """Recorded requests whose path contains `path_part` (and of `method`, if given)."""
        with self._lock:
            return [r for r in self.requests if path_part in r.path and (not method or r.method == method)]

    def finish_all(self) -> None:
        """Lets every running operation complete at its next poll."""
        with self._lock:
            self.never_done = False
            for op in self.operations.values():
                op.polls_left = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeYandex:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_post("/stt/v3/recognizeFileAsync", self._recognize)
        app.router.add_get("/operations/{id}", self._operation)
        app.router.add_get("/stt/v3/getRecognition", self._get_recognition)
        app.router.add_delete("/stt/v3/deleteRecognition", self._delete_recognition)
        app.router.add_post("/foundationModels/v1/completion", self._completion)
        self.url = f"http://127.0.0.1:{self._server.start(app)}"

    def stop(self) -> None:
        self._server.stop()

    # --- plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    dict(request.query),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            for suffix, queue in self._failures.items():
                if request.path.endswith(suffix) and queue:
                    status, payload, headers = queue.pop(0)
                    return web.json_response(payload, status=status, headers=headers)
        auth = request.headers.get("Authorization", "")
        accepted = {f"Api-Key {self.api_key}"} | ({f"Bearer {self.iam_token}"} if self.iam_token else set())
        if auth not in accepted:
            return _status(401, 16, "Unauthenticated")
        return await handler(request)

    def _now(self) -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _operation_body(self, op: _Operation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": op.id,
            "description": "STT v3 async recognition",
            "createdAt": op.created,
            "createdBy": "ajefakeserviceaccount",
            "modifiedAt": self._now(),
            "done": op.done,
            "metadata": None,
        }
        if op.done and op.error:
            body["error"] = op.error
        return body

    # --- SpeechKit ----------------------------------------------------------------------------

    async def _recognize(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except json.JSONDecodeError:
            return _status(400, 3, "Invalid JSON")
        if not isinstance(body, dict) or ("content" in body) == ("uri" in body):
            return _status(400, 3, "exactly one of content or uri is required")
        model = body.get("recognitionModel") or body.get("recognition_model") or {}
        container = ((model.get("audioFormat") or {}).get("containerAudio") or {}).get("containerAudioType")
        if container not in AUDIO_TYPES:
            return _status(400, 3, f"unsupported containerAudioType {container!r}")
        try:
            audio = base64.b64decode(body.get("content", ""), validate=True)
        except (binascii.Error, ValueError):
            return _status(400, 3, "content is not base64")
        if not audio:
            return _status(400, 3, "empty audio")
        with self._lock:
            errors = self.operation_errors
            error = errors.pop(0) if errors else None
            op = _Operation(
                f"f8d{next(self._ids):05d}{uuid.uuid4().hex[:12]}", audio, self.polls_until_done, error, self._now()
            )
            self.operations[op.id] = op
        return web.json_response(self._operation_body(op))

    async def _operation(self, request: web.Request) -> web.Response:
        with self._lock:
            op = self.operations.get(request.match_info["id"])
            if op is None:
                return _status(404, 5, "Operation not found")
            if not op.done and not self.never_done:
                if op.polls_left <= 0:
                    op.done = True
                else:
                    op.polls_left -= 1
            return web.json_response(self._operation_body(op))

    async def _get_recognition(self, request: web.Request) -> web.Response:
        op = self.operations.get(request.query.get("operationId", ""))
        if op is None or not op.done or op.error:
            return _status(404, 5, "Recognition results not found")
        lines = [json.dumps({"result": obj}) for obj in self._results(op)]
        return web.Response(text="\n".join(lines) + "\n", content_type="application/json")

    def _results(self, op: _Operation) -> list[dict[str, Any]]:
        session = {"uuid": op.id, "userRequestId": ""}
        objects: list[dict[str, Any]] = []
        for tag, phrases in sorted(self.transcript.items()):
            for index, phrase in enumerate(phrases):
                cursors = {
                    "receivedDataMs": str(phrase.end_ms),
                    "resetTimeMs": "0",
                    "partialTimeMs": str(phrase.end_ms),
                    "finalTimeMs": str(phrase.end_ms),
                    "finalIndex": str(index),
                    "eouTimeMs": "0",
                }
                common = {
                    "sessionUuid": session,
                    "audioCursors": cursors,
                    "responseWallTimeMs": "120",
                    "channelTag": tag,
                }
                words = [
                    {"text": w, "startTimeMs": str(phrase.start_ms), "endTimeMs": str(phrase.end_ms)}
                    for w in phrase.text.split()
                ]
                alternative = {
                    "words": words,
                    "text": phrase.text,
                    "startTimeMs": str(phrase.start_ms),
                    "endTimeMs": str(phrase.end_ms),
                    "confidence": 0,
                    "languages": [{"languageCode": self.language, "probability": 1}],
                }
                objects.append(
                    {
                        **common,
                        "partial": {"alternatives": [{**alternative, "text": phrase.text[:3]}], "channelTag": tag},
                    }
                )
                objects.append({**common, "final": {"alternatives": [alternative], "channelTag": tag}})
                objects.append({**common, "eouUpdate": {"timeMs": str(phrase.end_ms)}})
                if phrase.normalized:
                    objects.append(
                        {
                            **common,
                            "finalRefinement": {
                                "finalIndex": str(index),
                                "normalizedText": {
                                    "alternatives": [{**alternative, "text": phrase.normalized}],
                                    "channelTag": tag,
                                },
                            },
                        }
                    )
            objects.append(
                {
                    "sessionUuid": session,
                    "channelTag": tag,
                    "statusCode": {"codeType": "CLOSED", "message": "session closed"},
                }
            )
        return objects

    async def _delete_recognition(self, request: web.Request) -> web.Response:
        if request.query.get("operationId", "") not in self.operations:
            return _status(404, 5, "Operation not found")
        return web.json_response({})

    # --- YandexGPT ----------------------------------------------------------------------------

    async def _completion(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except json.JSONDecodeError:
            return _status(400, 3, "Invalid JSON")
        uri = body.get("modelUri", "") if isinstance(body, dict) else ""
        messages = body.get("messages") if isinstance(body, dict) else None
        if not uri.startswith(f"gpt://{self.folder_id}/"):
            return _status(400, 3, f"invalid modelUri {uri!r}")
        if (
            not isinstance(messages, list)
            or not messages
            or any(m.get("role") not in ("system", "user", "assistant") or not m.get("text") for m in messages)
        ):
            return _status(400, 3, "messages must be a list of {role, text}")
        text = (
            self.gpt_text
            if self.gpt_status != "ALTERNATIVE_STATUS_CONTENT_FILTER"
            else ("Unfortunately I cannot discuss this topic.")
        )
        return web.json_response(
            {
                "result": {
                    "alternatives": [{"message": {"role": "assistant", "text": text}, "status": self.gpt_status}],
                    "usage": {"inputTextTokens": "120", "completionTokens": "30", "totalTokens": "150"},
                    "modelVersion": "23.10.2024",
                }
            }
        )


def _status(http: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "details": []}, status=http)
