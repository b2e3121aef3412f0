"""wav → mp3 with ffmpeg-python driving the ffmpeg binary of the imageio-ffmpeg wheel, through pipes.

    transcoder = Transcoder("64k", jobs=0)          # 0: one transcode per core at a time
    mp3 = await transcoder.to_mp3(chunks)           # chunks: async iterator of wav bytes
    await storage.put(key, mp3.body, mp3.size, metadata); mp3.close()

The wav streams into ffmpeg's stdin while the mp3 is read from its stdout (kept in memory, or
in a temporary file beyond 16 MiB, so a very long call cannot exhaust memory);
channels are kept (mono stays mono, stereo stays stereo). A corrupt or empty wav raises BadAudio;
a wav shorter than its finalised header declares raises ShortAudio unless `accept_short` (then the
mp3 holds the audio there is and `complete` is False).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import IO, AsyncIterator

import ffmpeg
import imageio_ffmpeg

from . import metrics
from .audio import Mp3Counter, WavInfo, parse_wav_header
from .errors import BadAudio, ShortAudio

log = logging.getLogger(__name__)

UNFINALISED = (0, 0xFFFFFFFF)  # data sizes a writer leaves when it never patched the header
PIPE_BUFFER = 1024 * 1024
READ_SIZE = 256 * 1024
IN_MEMORY = 16 * 1024 * 1024  # a longer mp3 spills into a temporary file


@dataclass(frozen=True)
class Mp3:
    """The result, held in memory (or a temporary file when long); close() when stored."""

    body: IO[bytes]  # positioned at the start
    size: int
    duration: float
    channels: int
    seconds: float  # time spent transcoding
    complete: bool = True  # False: the wav ended before the size its header declares

    def close(self) -> None:
        self.body.close()


def ffmpeg_exe() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


class Transcoder:
    def __init__(self, bitrate: str, jobs: int = 0, exe: str | None = None) -> None:
        self.bitrate = bitrate
        self.exe = exe or ffmpeg_exe()
        self._slots = asyncio.Semaphore(jobs or os.cpu_count() or 1)

    def command(self, info: WavInfo) -> list[str]:
        options = {"f": "wav"}  # flush_packets=0 below: ffmpeg writes 32 KiB blocks, not one write per frame
        if info.data_size in UNFINALISED:
            options["ignore_length"] = "1"
        stream = ffmpeg.input("pipe:0", **options).output(
            "pipe:1", f="mp3", acodec="libmp3lame", audio_bitrate=self.bitrate, flush_packets=0)
        return list(ffmpeg.compile(stream, cmd=[self.exe, "-nostdin", "-hide_banner", "-loglevel", "error"]))

    async def to_mp3(self, chunks: AsyncIterator[bytes], accept_short: bool = False) -> Mp3:
        """Transcodes one wav (at most `jobs` at once); BadAudio for a corrupt or empty file,
        ShortAudio for one that ends early (unless `accept_short`)."""
        async with self._slots:
            head, info, ended = await _read_header(chunks)
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *self.command(info), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            _widen_input(proc)
            body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)
            counter = Mp3Counter()
            try:
                fed, size, err = await asyncio.gather(
                    _feed(proc, head, chunks, ended), _collect(proc, body, counter),
                    proc.stderr.read())  # type: ignore[union-attr]
                code = await proc.wait()
                if code != 0:
                    lines = err.decode(errors="replace").strip().splitlines()
                    raise BadAudio(f"ffmpeg could not convert it: {lines[-1] if lines else f'exit status {code}'}")
                result = counter.result()
                complete = _check_length(info, fed, accept_short)
            except BaseException:
                body.close()
                raise
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            seconds = time.perf_counter() - started
        metrics.TRANSCODE_SECONDS.observe(seconds)
        metrics.AUDIO_SECONDS.inc(result.duration)
        body.seek(0)
        return Mp3(body, size, round(result.duration, 3), info.channels, seconds, complete)


def _check_length(info: WavInfo, fed: int, accept_short: bool) -> bool:
    """Whether ffmpeg got every audio byte the finalised header declares; ShortAudio when not (a
    file still being copied would otherwise become a cut mp3), unless `accept_short`."""
    if info.data_size in UNFINALISED:
        return True
    audio = max(0, fed - info.data_offset)
    if audio >= info.data_size:
        return True
    if not accept_short:
        raise ShortAudio(f"the wav ended after {audio} of the {info.data_size} audio bytes its header declares "
                         "(still being written, or cut)")
    return False


async def _collect(proc: asyncio.subprocess.Process, body: IO[bytes], counter: Mp3Counter) -> int:
    """Reads ffmpeg's mp3 output into `body`, counting its frames; returns its size."""
    stdout = proc.stdout
    assert stdout is not None
    size = 0
    while chunk := await stdout.read(READ_SIZE):
        counter.feed(chunk)
        body.write(chunk)
        size += len(chunk)
    return size


def _widen_input(proc: asyncio.subprocess.Process) -> None:
    """A 1 MiB stdin pipe (Linux) instead of 64 KiB, so ffmpeg rarely waits for the next write."""
    pipe = proc.stdin.transport.get_extra_info("pipe") if proc.stdin is not None else None
    if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BUFFER)


async def _read_header(chunks: AsyncIterator[bytes]) -> tuple[bytes, WavInfo, bool]:
    """Reads until the header is parsed and some audio follows; (bytes read, info, source ended)."""
    head = b""
    info: WavInfo | None = None
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        head += chunk
        info = parse_wav_header(head)
        if info is not None and len(head) > info.data_offset:
            return head, info, False
    info = parse_wav_header(head) if head else None
    if not head:
        raise BadAudio("empty file")
    if info is None:
        raise BadAudio("truncated wav header")
    raise BadAudio("empty recording: the wav holds no audio data")


async def _feed(proc: asyncio.subprocess.Process, head: bytes, chunks: AsyncIterator[bytes], ended: bool) -> int:
    """Writes the wav into ffmpeg's stdin; returns the bytes it took. A source error propagates."""
    stdin = proc.stdin
    assert stdin is not None
    fed = 0
    try:
        stdin.write(head)
        await stdin.drain()
        fed = len(head)
        if not ended:
            async for chunk in chunks:
                stdin.write(chunk)
                await stdin.drain()
                fed += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        log.debug("ffmpeg closed its input early")  # its exit status tells why
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()
    return fed
