"""Where a leg's wav files come from: the monitor over gRPC (`[pbx] recordings = xapi`) or the folder.

    source = XapiSource(app.channel("monitor"))      # or FolderSource(config.pbx.recordings_dir)
    scanner = source.scanner(leg, window)
    files, settled = await scanner.scan()            # call again until settled and past window.deadline
    async for chunk in files[0].open(): ...

xapi: the monitor lists the leg's rows of XAPI `Recordings` (it holds the only PBX token) and
streams each file. folder: media runs on the PBX host and reads `<recordings_dir>/<ext>/*.wav`;
a file belongs to the leg when it was last written between the leg's answer and the end of the
grace window, and is taken once its size and mtime have stopped changing.

A file that ends at the leg's hangup is its last one (earlier files of a mobile reconnect ended
during the call), so once it is complete nobody waits for the rest of the grace window.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from tcxhooks.v1 import common_pb2, monitor_service_pb2, monitor_service_pb2_grpc

from .errors import BadAudio, LegError, SourceUnavailable
from .storage import read_chunks

CHUNK = 1024 * 1024
STABLE_SECONDS = 0.75  # a folder file unchanged this long (and between two looks) is complete
SLACK = 2.0  # clock and file-system timestamp tolerance around the leg's times
SAFE_DN = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


@dataclass(frozen=True)
class Window:
    start: float  # a file of the leg was last written at or after this (unix seconds)
    deadline: float  # late files are waited for until this moment


@dataclass(frozen=True)
class Found:
    ident: str  # stable identity of the file (names its object)
    order: float  # recording time, for ordering several files
    end: float  # when the file stopped being written (unix seconds; 0 unknown)
    label: str  # for logs
    open: Callable[[], AsyncIterator[bytes]]


class Scanner(Protocol):
    async def scan(self) -> tuple[list[Found], bool]: ...


class Source(Protocol):
    kind: str
    poll: float

    def scanner(self, leg: common_pb2.LegRef, window: Window) -> Scanner: ...
    async def ping(self) -> None: ...


# --- xapi, through the monitor ------------------------------------------------------------------


class XapiSource:
    kind = "xapi"
    poll = 0.5

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = monitor_service_pb2_grpc.MonitorServiceStub(channel)

    def scanner(self, leg: common_pb2.LegRef, window: Window) -> Scanner:
        return _XapiScanner(self.stub, leg)

    async def ping(self) -> None:
        """The monitor is not a critical dependency (jobs wait for it); nothing to probe here."""


class _XapiScanner:
    def __init__(self, stub: monitor_service_pb2_grpc.MonitorServiceStub, leg: common_pb2.LegRef) -> None:
        self.stub, self.leg = stub, leg

    async def scan(self) -> tuple[list[Found], bool]:
        try:
            reply = await self.stub.ListRecordings(monitor_service_pb2.ListRecordingsRequest(leg=self.leg), timeout=15)
        except grpc.aio.AioRpcError as exc:
            detail = f"monitor ListRecordings failed: {exc.code().name} {exc.details() or ''}".strip()
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise LegError(detail) from exc
            raise SourceUnavailable(detail) from exc
        found = []
        for row in reply.recordings:
            start = row.start_time.seconds + row.start_time.nanos / 1e9
            end = row.end_time.seconds + row.end_time.nanos / 1e9
            label = row.file_name or f"recording {row.recording_id}"
            found.append(Found(f"rec-{row.recording_id}", start, end, label, self._opener(row.recording_id)))
        return found, True

    def _opener(self, recording_id: int) -> Callable[[], AsyncIterator[bytes]]:
        return lambda: self._fetch(recording_id)

    async def _fetch(self, recording_id: int) -> AsyncIterator[bytes]:
        call = self.stub.FetchRecording(
            monitor_service_pb2.FetchRecordingRequest(recording_id=recording_id), timeout=600
        )
        try:
            async for reply in call:
                yield reply.chunk
        except grpc.aio.AioRpcError as exc:
            detail = f"{exc.code().name} {exc.details() or ''}".strip()
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise BadAudio(f"the PBX has no file for recording {recording_id}: {detail}") from exc
            raise SourceUnavailable(f"monitor FetchRecording {recording_id} failed: {detail}") from exc
        finally:
            call.cancel()


# --- the recordings folder (media on the PBX host) -----------------------------------------------


class FolderSource:
    kind = "folder"
    poll = 0.2

    def __init__(self, root: str, stable_seconds: float = STABLE_SECONDS) -> None:
        self.root = Path(root)
        self.stable_seconds = stable_seconds

    def scanner(self, leg: common_pb2.LegRef, window: Window) -> Scanner:
        return _FolderScanner(self, leg, window)

    async def ping(self) -> None:
        if not await asyncio.to_thread(os.access, self.root, os.R_OK | os.X_OK):
            raise SourceUnavailable(f"recordings folder {self.root} is not readable")


class _FolderScanner:
    def __init__(self, source: FolderSource, leg: common_pb2.LegRef, window: Window) -> None:
        self.source, self.leg, self.window = source, leg, window
        self.seen: dict[str, tuple[int, int]] = {}  # name → (size, mtime_ns) at the previous look

    def _list(self) -> list[tuple[str, int, int]]:
        if not SAFE_DN.fullmatch(self.leg.dn) or self.leg.dn in (".", ".."):
            raise LegError(f"extension {self.leg.dn!r} cannot name a recordings folder")
        folder = self.source.root / self.leg.dn
        try:
            with os.scandir(folder) as entries:
                return [
                    (e.name, st.st_size, st.st_mtime_ns)
                    for e in entries
                    if e.name.lower().endswith(".wav") and e.is_file() and (st := e.stat())
                ]
        except FileNotFoundError:
            if not self.source.root.is_dir():
                raise SourceUnavailable(f"recordings folder {self.source.root} does not exist") from None
            return []
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {folder}: {exc.strerror}") from exc

    async def scan(self) -> tuple[list[Found], bool]:
        entries = await asyncio.to_thread(self._list)
        now, settled, found = time.time(), True, []
        seen: dict[str, tuple[int, int]] = {}
        for name, size, mtime_ns in entries:
            mtime = mtime_ns / 1e9
            if not self.window.start <= mtime <= self.window.deadline + SLACK:
                continue
            seen[name] = (size, mtime_ns)
            if self.seen.get(name) != (size, mtime_ns) or now - mtime < self.source.stable_seconds:
                settled = False
                continue
            path = self.source.root / self.leg.dn / name
            found.append(Found(f"{self.leg.dn}/{name}", mtime, mtime, name, file_reader(path)))
        self.seen = seen
        return found, settled


def file_reader(path: Path) -> Callable[[], AsyncIterator[bytes]]:
    async def read() -> AsyncIterator[bytes]:
        try:
            async for chunk in read_chunks(path, CHUNK):
                yield chunk
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {path}: {exc.strerror}") from exc

    return read
