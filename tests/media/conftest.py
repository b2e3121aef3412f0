"""Fixtures of the media tests: fake peers, wav files, and the real media process."""

from __future__ import annotations

import array
import math
import re
import struct
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import imageio_ffmpeg
import pytest

from tcxhooks.v1 import common_pb2, events_pb2, media_service_pb2, media_service_pb2_grpc
from tests.fakes.media_peers import TOKEN, Peers
from tests.helpers.services import kill9, read_config, start, stop, wait_healthy, write_config

RATE = 8000
LINK_SECRET = "media-test-link-secret"


def make_wav(path: Path, seconds: float, channels: int = 1, pitch: float = 440.0) -> Path:
    """Speech-band tones, 8 kHz 16-bit PCM (mono or stereo), written with the stdlib wave module."""
    period = array.array("h")
    for i in range(RATE):  # one second, repeated
        value = int(
            6000 * math.sin(2 * math.pi * pitch * i / RATE) * (0.6 + 0.4 * math.sin(2 * math.pi * 3 * i / RATE))
        )
        period.extend([value] * channels)
    frames = int(seconds * RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(RATE)
        whole, rest = divmod(frames, RATE)
        block = period.tobytes()
        for _ in range(whole):
            out.writeframes(block)
        out.writeframes(block[: rest * 2 * channels])
    return path


def wav_with_format(wav: bytes, tag: int, sub_format: int | None = None) -> bytes:
    """The wav's header rewritten with another format tag (and an EXTENSIBLE fmt chunk if asked)."""
    channels, rate, byte_rate, align, bits = struct.unpack_from("<HIIHH", wav, 22)
    if sub_format is None:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits)
    else:
        guid = struct.pack("<H", sub_format) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", tag, channels, rate, byte_rate, align, bits, 22, bits, 0) + guid
    data = wav[36:]
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def decode_mp3(data: bytes) -> tuple[float, int]:
    """Decodes the whole mp3 with ffmpeg; (seconds, channels). Fails on a broken file."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    probe = subprocess.run(
        [ffmpeg, "-hide_banner", "-f", "mp3", "-i", "pipe:0", "-f", "null", "-"],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr.decode()
    layout = re.search(r"Audio: mp3.*?, (\d+) Hz, (mono|stereo)", probe.stderr.decode())
    assert layout, probe.stderr.decode()
    pcm = subprocess.run(
        [ffmpeg, "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(RATE), "pipe:1"],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert pcm.returncode == 0 and not pcm.stderr.strip(), pcm.stderr.decode()
    return len(pcm.stdout) / 2 / RATE, 1 if layout.group(2) == "mono" else 2


def leg(call_id: str, dn: str = "101", start: float | None = None, end: float | None = None) -> common_pb2.LegRef:
    end = time.time() if end is None else end
    start = end - 60 if start is None else start
    number = re.search(r"_(\d+)-", call_id)
    return common_pb2.LegRef(
        call_id=call_id,
        dn=dn,
        pbx_call_number=int(number.group(1)) if number else 0,
        start_unix_ms=int(start * 1000),
        end_unix_ms=int(end * 1000),
        caller_id="79161234567",
    )


def ended_event(call_id: str) -> events_pb2.CallEvent:
    return events_pb2.CallEvent(
        type=events_pb2.CALL_EVENT_TYPE_ENDED,
        call_id=call_id,
        caller_id="79161234567",
        did="74951234567",
        user="101",
        finish_type=1,
        duration_seconds=65,
        title="Main line, 0:01:05",
        did_name="Main line",
    )


@dataclass
class Media:
    """A running media process and how to reach it."""

    config: Path
    folder: Path
    proc: Any = None

    @property
    def address(self) -> str:
        return read_config(self.config)["services"]["media"]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{read_config(self.config)['metrics']['port']}/metrics"

    def start(self) -> None:
        self.proc = start(["media", "-c", str(self.config)], self.folder / "media.log")
        wait_healthy(self.address, timeout=30)

    def stop(self) -> int:
        return stop(self.proc)

    def kill9(self) -> None:
        kill9(self.proc)

    def log(self) -> str:
        return (self.folder / "media.log").read_text(errors="replace")

    def stub(self) -> tuple[media_service_pb2_grpc.MediaServiceStub, grpc.Channel]:
        channel = grpc.insecure_channel(self.address)
        return media_service_pb2_grpc.MediaServiceStub(channel), channel

    def call(self, method: str, request: Any) -> Any:
        stub, channel = self.stub()
        with channel:
            return getattr(stub, method)(request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=30)

    def due(self, leg_ref: common_pb2.LegRef, ended: events_pb2.CallEvent | None = None) -> bool:
        reply = self.call(
            "RecordingsDue",
            media_service_pb2.RecordingsDueRequest(leg=leg_ref, chain=leg_ref.call_id.rsplit("-", 1)[0], ended=ended),
        )
        return bool(reply.duplicate)

    def fetch_audio(self, call_id: str, file: int) -> bytes:
        """The stored mp3 as analytics reads it (MediaService.FetchAudio, a stream of chunks)."""
        stub, channel = self.stub()
        with channel:
            chunks = stub.FetchAudio(
                media_service_pb2.FetchAudioRequest(call_id=call_id, file=file),
                metadata=[("authorization", f"Bearer {TOKEN}")],
                timeout=30,
            )
            return b"".join(reply.chunk for reply in chunks)

    def recording(self, call_id: str) -> media_service_pb2.GetRecordingResponse:
        return self.call("GetRecording", media_service_pb2.GetRecordingRequest(call_id=call_id))

    def wait_state(self, call_id: str, state: int, timeout: float = 30) -> media_service_pb2.GetRecordingResponse:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recording(call_id)
            if reply.state == state:
                return reply
            if time.monotonic() > deadline:
                raise AssertionError(f"{call_id} state {reply.state}, not {state}\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def metric(self, name: str, labels: str = "") -> float:
        text = httpx.get(self.metrics_url, timeout=5).text
        match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    fakes = Peers(tmp_path_factory.mktemp("peers"))
    yield fakes
    fakes.stop()


def media_config(folder: Path, peers: Peers, **sections: dict[str, object]) -> Path:
    recordings = {"grace": "1", "retention_days": "30", "link_secret": LINK_SECRET, **sections.pop("recordings", {})}
    services = {**peers.addresses, "token": TOKEN, **sections.pop("services", {})}
    return write_config(folder, recordings=recordings, services=services, **sections)


def running_media(folder: Path, peers: Peers, **sections: dict[str, object]) -> Iterator[Media]:
    media = Media(media_config(folder, peers, **sections), folder)
    media.start()
    try:
        yield media
    finally:
        assert media.stop() == 0, media.log()[-3000:]
