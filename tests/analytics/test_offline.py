"""The `offline` backend end to end: espeak-ng speech in a stereo mp3 → Whisper base → analytics event."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.analytics_peers import RecordingDispatcher
from tests.helpers.services import read_config

from .conftest import CLIENT, OPERATOR, Audio, StartService
from .support import word_error_rate

CALL = "261125213500_9-1"
WER_BOUND = 0.35


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None,
    reason="the offline extra is not installed (pip install -e '.[offline]')",
)
def test_offline_backend_transcribes_each_channel(
    dispatcher: RecordingDispatcher, analytics_service: StartService, call_audio: Audio
) -> None:
    # Any attempt to reach the internet goes to a dead proxy; only loopback (media, dispatcher) works.
    no_internet = {
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "HF_HUB_OFFLINE": "0",
    }
    service = analytics_service({"enabled": "true", "backend": "offline", "language": "en-US"}, env=no_internet)
    started = time.monotonic()
    service.submit(CALL, call_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics", timeout=90)
    elapsed = dispatcher.received_at[f"{CALL}/analytics"] - started
    assert event.WhichOneof("payload") == "analytics", event
    ready = event.analytics
    assert ready.backend == "offline" and ready.language == "en-US"
    lines = ready.text.splitlines()
    assert lines and all(line.startswith(("operator: ", "client: ")) for line in lines)
    operator = " ".join(s.text for s in ready.segments if s.channel == "operator")
    client = " ".join(s.text for s in ready.segments if s.channel == "client")
    wer_operator = word_error_rate(" ".join(OPERATOR), operator)
    wer_client = word_error_rate(" ".join(CLIENT), client)
    print(
        f"offline: submit → analytics event in {elapsed:.2f}s for {call_audio.duration:.1f}s of stereo audio; "
        f"WER operator {wer_operator:.3f}, client {wer_client:.3f}"
    )
    assert wer_operator < WER_BOUND, operator
    assert wer_client < WER_BOUND, client
    starts = [s.start_seconds for s in ready.segments]
    assert starts == sorted(starts) and ready.segments[0].channel == "operator"
    assert ready.summary and all(part.strip(". ") in ready.text for part in ready.summary.split(". "))


def test_offline_without_the_extra_reports_no_backend(
    tmp_path: Path, dispatcher: RecordingDispatcher, analytics_service: StartService, call_audio: Audio
) -> None:
    hidden = tmp_path / "hide"
    (hidden / "faster_whisper").mkdir(parents=True)
    (hidden / "faster_whisper" / "__init__.py").write_text("raise ImportError(\"No module named 'faster_whisper'\")\n")
    service = analytics_service({"enabled": "true", "backend": "offline"}, env={"PYTHONPATH": str(hidden)})
    service.submit(CALL, call_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.analytics_failed.error == (
        "no backend configured: backend = offline needs the offline extra (pip install 'tcxhooks[offline]'): "
        "No module named 'faster_whisper'"
    )
    port = read_config(service.config)["metrics"]["port"]
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'tcxhooks_dependency_up{dependency="backend",service="analytics"} 0.0' in metrics


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None,
    reason="the offline extra is not installed (pip install -e '.[offline]')",
)
def test_offline_detects_english_by_default(
    dispatcher: RecordingDispatcher, analytics_service: StartService, call_audio: Audio
) -> None:
    service = analytics_service({"enabled": "true", "backend": "offline"})  # no [analytics] language
    service.submit(CALL, call_audio)
    ready = dispatcher.wait_for(f"{CALL}/analytics", timeout=90).analytics
    assert ready.language == "en-US"
    assert (
        word_error_rate(
            " ".join(OPERATOR + CLIENT),
            " ".join(
                [s.text for s in ready.segments if s.channel == "operator"]
                + [s.text for s in ready.segments if s.channel == "client"]
            ),
        )
        < WER_BOUND
    )
