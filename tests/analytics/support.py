"""Test doubles for the analytics tests: a recording DispatcherService, media's FetchAudio, speech audio."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import imageio_ffmpeg

from tcxhooks.v1 import (
    dispatcher_service_pb2,
    dispatcher_service_pb2_grpc,
    events_pb2,
    media_service_pb2,
    media_service_pb2_grpc,
)
from tests.helpers.net import free_port


class RecordingDispatcher(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    """Stores published events once per event_id (as the real dispatcher does) and records every call."""

    def __init__(self) -> None:
        self.events: dict[str, events_pb2.Event] = {}
        self.received_at: dict[str, float] = {}
        self.calls = 0
        self.reject_next = 0
        self.refuse: set[str] = set()  # event ids answered INVALID_ARGUMENT (an older dispatcher's answer)
        self._cond = threading.Condition()
        self.address = f"127.0.0.1:{free_port()}"
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port(self.address)

    def Publish(self, request: dispatcher_service_pb2.PublishRequest, context: grpc.ServicerContext
                ) -> dispatcher_service_pb2.PublishResponse:
        with self._cond:
            self.calls += 1
            if self.reject_next > 0:
                self.reject_next -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "dispatcher store busy (test)")
            if request.event.event_id in self.refuse:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "event has no payload this dispatcher knows (test)")
            event = request.event
            duplicate = event.event_id in self.events
            if not duplicate:
                self.events[event.event_id] = event
                self.received_at[event.event_id] = time.monotonic()
            self._cond.notify_all()
        return dispatcher_service_pb2.PublishResponse(sequence=1, duplicate=duplicate, deliveries=1)

    def wait_for(self, event_id: str, timeout: float = 30.0) -> events_pb2.Event:
        with self._cond:
            if not self._cond.wait_for(lambda: event_id in self.events, timeout):
                raise AssertionError(f"no event {event_id} within {timeout}s; have {sorted(self.events)}")
            return self.events[event_id]

    def __enter__(self) -> RecordingDispatcher:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(0)


class FakeMedia(media_service_pb2_grpc.MediaServiceServicer):
    """MediaService.FetchAudio over the files a test stores per (call id, file number), as media
    streams its stored mp3s; `unavailable_next` answers UNAVAILABLE that many times first."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, int], Path] = {}
        self.fetches: list[tuple[str, int]] = []
        self.unavailable_next = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        media_service_pb2_grpc.add_MediaServiceServicer_to_server(self, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def add(self, call_id: str, file: int, path: Path) -> None:
        self.files[(call_id, file)] = path

    def FetchAudio(self, request: media_service_pb2.FetchAudioRequest, context: grpc.ServicerContext
                   ) -> Iterator[media_service_pb2.FetchAudioResponse]:
        self.fetches.append((request.call_id, request.file))
        if self.unavailable_next > 0:
            self.unavailable_next -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "storage unavailable (test)")
        path = self.files.get((request.call_id, request.file))
        if path is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no stored file {request.file} for {request.call_id!r}")
        with open(path, "rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield media_service_pb2.FetchAudioResponse(chunk=chunk)

    def __enter__(self) -> FakeMedia:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(0)


def espeak(text: str, wav: Path, voice: str = "en-us", speed: int = 150) -> None:
    if not shutil.which("espeak-ng"):
        raise AssertionError("espeak-ng is needed to synthesise speech (apt-get install -y espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True,
                   capture_output=True)


def stereo_call_mp3(operator: list[str], client: list[str], out: Path, rate: int = 8000, bitrate: str = "32k") -> float:
    """A stereo mp3 (phone-like 8 kHz, 32 kbit/s by default): operator phrases on the left, client on the
    right, taking turns. Returns its duration in seconds."""
    work = out.parent / (out.stem + "-parts")
    work.mkdir(exist_ok=True)
    inputs, filters, cursor = [], [], 0.0
    labels: dict[str, list[str]] = {"L": [], "R": []}
    turns = [(side, text) for pair in zip(operator, client, strict=False) for side, text in zip("LR", pair, strict=False)]
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
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *inputs,
                    "-filter_complex", ";".join(filters), "-map", "[out]", "-t", f"{total:.2f}", "-ac", "2",
                    "-ar", str(rate), "-b:a", bitrate, str(out)], check=True)
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
