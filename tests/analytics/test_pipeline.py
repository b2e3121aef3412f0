"""The whole product: simulator call → monitor → media → analytics → dispatcher → CRM webhook (`tcxhooks up`)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.receiver import Receiver, Request
from tests.fakes.yandex import FakeYandex, Phrase
from tests.helpers.services import read_config, start, start_simulator, stop, wait_healthy, write_config

from .conftest import yandex_settings
from .support import word_error_rate

CLIENT_ID = "crmhooks"
CLIENT_SECRET = "analytics-e2e-client-secret"
SERVICE_TOKEN = "analytics-e2e-service-token"
# The first two phrases of the simulator's dialogue (simulator/audio.py) fill 11.5 s of talk.
SPOKEN = (
    "Hello, thank you for calling. This is Ivan. How can I help you today? "
    "Hi. I would like to check the status of my order, number four five six."
)


def _webhook(crm: Receiver, event: str, timeout: float) -> Request:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in list(crm.requests):
            if request.form().get("event") == event:
                return request
        time.sleep(0.05)
    raise AssertionError(f"no {event} webhook within {timeout}s; got {[r.form().get('event') for r in crm.requests]}")


def _run_call(
    tmp_path: Path, analytics: dict[str, str], talk_seconds: float, model_cache: Path
) -> Iterator[tuple[Receiver, dict[str, Request], dict[str, float]]]:
    sim = start_simulator(tmp_path, CLIENT_ID, CLIENT_SECRET)
    crm = Receiver().start()
    config = write_config(
        tmp_path,
        pbx=sim.pbx(ringing_grace="1"),
        webhook={"url": crm.url},
        recordings={"grace": "3"},
        services={"token": SERVICE_TOKEN},
        analytics=analytics,
        metrics={"port": 0},
    )  # 0: no base+offset port clashes
    up = None
    try:
        sim.wait_ready()
        up = start(["up", "-c", str(config)], tmp_path / "up.log", env={"XDG_CACHE_HOME": str(model_cache)})
        for service in ("dispatcher", "media", "analytics", "monitor"):
            wait_healthy(read_config(config)["services"][service], timeout=60)
        httpx.post(
            f"{sim.url}/sim/play",
            json={"scenario": "inbound_answered", "params": {"ring_seconds": 0.5, "talk_seconds": talk_seconds}},
            timeout=10,
        ).raise_for_status()
        hooks = {"incoming": _webhook(crm, "incoming", 60)}
        hooks["recording"] = _webhook(crm, "recording", 60)
        hooks["analytics"] = _webhook(crm, "analytics", 120)
        times = {name: hook.received for name, hook in hooks.items()}
        yield crm, hooks, times
    except AssertionError as exc:
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))
        raise AssertionError(f"pipeline failed: {exc}\nlogs:\n{logs}") from None
    finally:
        if up is not None:
            stop(up)
        stop(sim.proc)
        crm.stop()


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="espeak-ng gives the simulator real speech")
def test_offline_pipeline_transcribes_the_simulated_call(tmp_path: Path, model_cache: Path) -> None:
    pytest.importorskip("faster_whisper", reason="the offline extra is not installed")
    # the defaults: no [analytics] language, so the English call must be recognised as English
    for _crm, hooks, times in _run_call(tmp_path, {"enabled": "true", "backend": "offline"}, 11.5, model_cache):
        form = hooks["analytics"].form()
        call_id = hooks["incoming"].form()["id"]
        assert form["id"] == call_id == hooks["recording"].form()["id"]
        wer = word_error_rate(SPOKEN, form["text"])
        print(
            f"offline pipeline: call ended → analytics webhook {times['analytics'] - times['incoming']:.2f}s, "
            f"recording → analytics {times['analytics'] - times['recording']:.2f}s; WER {wer:.3f}; "
            f"text {form['text']!r}; summary {form['summary']!r}"
        )
        assert wer < 0.35, form["text"]
        assert form["summary"] and form["summary"].split(".")[0] in form["text"]
        assert not form["text"].startswith(("operator:", "client:"))  # the 3CX recording is mono


def test_yandex_pipeline_sends_media_mp3_to_speechkit(tmp_path: Path, model_cache: Path) -> None:
    with FakeYandex() as fake:
        fake.transcript = {"0": [Phrase(0, 2500, "hello thank you for calling", "Hello, thank you for calling.")]}
        for _crm, hooks, times in _run_call(tmp_path, yandex_settings(fake), 4.0, model_cache):
            form = hooks["analytics"].form()
            assert form == {
                "event": "analytics",
                "id": hooks["incoming"].form()["id"],
                "text": "Hello, thank you for calling.",
                "summary": fake.gpt_text,
            }
            link = hooks["recording"].form()["links[]"]
            mp3 = httpx.get(link, timeout=10, follow_redirects=True).content
            [submit] = fake.requests_to("/stt/v3/recognizeFileAsync")
            assert base64.b64decode(submit.json["content"]) == mp3
            print(
                f"yandex (fake) pipeline: call ended → analytics webhook "
                f"{times['analytics'] - times['incoming']:.2f}s, recording → analytics "
                f"{times['analytics'] - times['recording']:.2f}s"
            )
            logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
            assert fake.api_key not in logs
