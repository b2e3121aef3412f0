"""Fixtures: fake Yandex, a recording dispatcher, media serving speech mp3s over gRPC, the real service."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tcxhooks.v1 import analytics_service_pb2 as pb
from tcxhooks.v1 import analytics_service_pb2_grpc
from tests.fakes.analytics_peers import FakeMedia, RecordingDispatcher
from tests.fakes.yandex import FakeYandex
from tests.helpers.services import start, stop, wait_healthy, write_config

from .support import stereo_call_mp3

OPERATOR = ["Hello, this is Anna from the sales department.", "Your order will be delivered on Monday morning."]
CLIENT = ["Hi Anna, I am calling about my order.", "Thank you, Monday works for me."]


@dataclass
class Audio:
    path: Path
    duration: float


@pytest.fixture(scope="session")
def call_audio(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    folder = tmp_path_factory.mktemp("audio")
    duration = stereo_call_mp3(OPERATOR, CLIENT, folder / "call.mp3", rate=16000, bitrate="64k")
    return Audio(folder / "call.mp3", duration)


@pytest.fixture(scope="session")
def short_audio(call_audio: Audio) -> Audio:
    """A 3-second stereo call (the Yandex tests' fake does not listen; a short file polls sooner)."""
    duration = stereo_call_mp3(["Hello."], ["Hi."], call_audio.path.parent / "short.mp3")
    return Audio(call_audio.path.parent / "short.mp3", duration)


@pytest.fixture
def media() -> Iterator[FakeMedia]:
    with FakeMedia() as fake_media:
        yield fake_media


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def dispatcher() -> Iterator[RecordingDispatcher]:
    with RecordingDispatcher() as recorder:
        yield recorder


@pytest.fixture
def fake() -> Iterator[FakeYandex]:
    with FakeYandex() as server:
        yield server


def yandex_settings(fake: FakeYandex, **overrides: Any) -> dict[str, Any]:
    return {
        "enabled": "true",
        "backend": "yandex",
        "api_key": fake.api_key,
        "folder_id": fake.folder_id,
        "language": "en-US",
        "stt_url": fake.url,
        "operation_url": fake.url,
        "llm_url": fake.url,
        **overrides,
    }


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    config: Path
    log: Path
    address: str
    channel: grpc.Channel
    media: FakeMedia

    @property
    def stub(self) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
        return analytics_service_pb2_grpc.AnalyticsServiceStub(self.channel)

    def submit(self, call_id: str, audio: Audio, channels: int = 2, chain: str = "") -> pb.SubmitResponse:
        """Stores `audio` as the leg's first file in media and submits the leg."""
        self.media.add(call_id, 1, audio.path)
        source = pb.AudioSource(file=1, duration_seconds=audio.duration, channels=channels)
        return self.stub.Submit(
            pb.SubmitRequest(call_id=call_id, chain=chain or call_id.split("-")[0], audio=[source]), timeout=10
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        from tests.helpers.services import read_config

        port = read_config(self.config)["metrics"]["port"]
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


StartService = Callable[..., Service]


@pytest.fixture
def analytics_service(
    tmp_path: Path, dispatcher: RecordingDispatcher, media: FakeMedia, model_cache: Path
) -> Iterator[StartService]:
    """Starts `tcxhooks analytics` with the given [analytics] settings (restartable on the same store)."""
    started: list[Service] = []

    def launch(
        settings: dict[str, Any],
        log_level: str = "info",
        env: dict[str, str] | None = None,
        reuse: Service | None = None,
        store_url: str = "",
    ) -> Service:
        if reuse is None:
            extra = {"store": {"url": store_url}} if store_url else {}
            config = write_config(
                tmp_path,
                analytics=settings,
                services={"dispatcher": dispatcher.address, "media": media.address},
                log={"level": log_level},
                **extra,
            )
        else:
            config = reuse.config
        log = tmp_path / "analytics.log"
        proc = start(["analytics", "-c", str(config)], log, env={"XDG_CACHE_HOME": str(model_cache), **(env or {})})
        address = _analytics_address(config)
        deadline = time.monotonic() + 30
        while True:
            try:
                wait_healthy(address, timeout=1)
                break
            except AssertionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    stop(proc)
                    raise AssertionError(
                        "analytics did not become healthy:\n" + log.read_text(errors="replace")
                    ) from None
        service = Service(proc, config, log, address, grpc.insecure_channel(address), media)
        started.append(service)
        return service

    yield launch
    for service in started:
        service.channel.close()
        stop(service.proc)


def _analytics_address(config: Path) -> str:
    from tests.helpers.services import read_config

    return read_config(config)["services"]["analytics"]
