"""wav → mp3 with ffmpeg-python driving the ffmpeg binary of the imageio-ffmpeg wheel, through pipes.

    transcoder = Transcoder("64k", jobs=0)          # 0: as many at once as the container's CPU limit
    mp3 = await transcoder.to_mp3(chunks)           # chunks: async iterator of wav bytes
    await storage.put(key, mp3.body, mp3.size, metadata); mp3.close()

The wav streams into ffmpeg's stdin while the mp3 is read from its stdout (kept in memory, or
in a temporary file beyond 16 MiB, so a very long call cannot exhaust memory);
channels are kept (mono stays mono, stereo stays stereo).

An mp3 is only returned complete: its decoded length (MPEG frames counted as it streams out) must
cover the audio of the wav, as its finalised header declares it (or as far as it was read, for a
header the writer never finalised). A corrupt or empty wav, or one that is not PCM or G.711,
raises BadAudio; a wav shorter than its header declares raises ShortAudio unless `accept_short`
(then the mp3 holds the audio there is and `complete` is False); an mp3 shorter than the audio
ffmpeg was given raises IncompleteMp3 (BadAudio when `last_try`).

ffmpeg is started with Python's `subprocess` (posix_spawn/vfork on Linux) and its pipes attached
to the event loop, not with `loop.subprocess_exec`: uvloop starts children with libuv's fork(),
which runs gRPC's fork handlers in this process, and in the child before it execs, while
FetchRecording streams are in flight, which gRPC does not support (services/media/README.md,
"ffmpeg and the event loop").
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

import ffmpeg
import imageio_ffmpeg

from . import metrics
from .audio import Mp3Counter, WavInfo, parse_wav_header
from .cpus import usable_cpus
from .errors import BadAudio, IncompleteMp3, ShortAudio

log = logging.getLogger(__name__)

UNFINALISED = (0, 0xFFFFFFFF)  # data sizes a writer leaves when it never patched the header
PIPE_BUFFER = 1024 * 1024
READ_SIZE = 256 * 1024
IN_MEMORY = 16 * 1024 * 1024  # a longer mp3 spills into a temporary file
# How much shorter than the wav an mp3 may decode: MPEG frames hold up to 1152 samples and the
# encoder adds its delay at the start, so an mp3 is never shorter by more than a frame or two.
LENGTH_TOLERANCE = 0.1


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
        self.slots = jobs or usable_cpus()
        self._slots = asyncio.Semaphore(self.slots)

    def command(self, info: WavInfo) -> list[str]:
        options = {"f": "wav"}  # flush_packets=0 below: ffmpeg writes 32 KiB blocks, not one write per frame
        if info.data_size in UNFINALISED:
            options["ignore_length"] = "1"
        stream = ffmpeg.input("pipe:0", **options).output(
            "pipe:1", f="mp3", acodec="libmp3lame", audio_bitrate=self.bitrate, flush_packets=0
        )
        return list(ffmpeg.compile(stream, cmd=[self.exe, "-nostdin", "-hide_banner", "-loglevel", "error"]))

    async def to_mp3(self, chunks: AsyncIterator[bytes], accept_short: bool = False, last_try: bool = False) -> Mp3:
        """Transcodes one wav (at most `jobs` at once); see the module docstring for what it raises."""
        async with self._slots:
            head, info, ended = await _read_header(chunks)
            started = time.perf_counter()
            # closed here on failure, else by the Mp3 it is handed to
            body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115
            counter = Mp3Counter()
            try:
                async with _ffmpeg(self.command(info)) as proc:
                    fed, size, err = await asyncio.gather(
                        _feed(proc.stdin, head, chunks, ended), _collect(proc.stdout, body, counter), proc.stderr.read()
                    )
                    code = await proc.wait()
                if code != 0:
                    lines = err.decode(errors="replace").strip().splitlines()
                    raise BadAudio(f"ffmpeg could not convert it: {lines[-1] if lines else f'exit status {code}'}")
                result = counter.result()
                complete = check_length(info, fed, result.duration, accept_short, last_try)
            except BaseException:
                body.close()
                raise
            seconds = time.perf_counter() - started
        metrics.TRANSCODE_SECONDS.observe(seconds)
        metrics.AUDIO_SECONDS.inc(result.duration)
        body.seek(0)
        return Mp3(body, size, round(result.duration, 3), info.channels, seconds, complete)


def check_length(info: WavInfo, fed: int, mp3_seconds: float, accept_short: bool, last_try: bool) -> bool:
    """Whether the mp3 holds the whole recording: the wav must reach the size its finalised header
    declares (ShortAudio, unless `accept_short`: then False), and the mp3 must decode to at least
    the audio ffmpeg was given (IncompleteMp3; BadAudio on the `last_try`)."""
    audio = max(0, fed - info.data_offset)
    complete = True
    if info.data_size not in UNFINALISED:
        if audio < info.data_size:
            if not accept_short:
                raise ShortAudio(
                    f"the wav ended after {audio} of the {info.data_size} audio bytes its header "
                    "declares (still being written, or cut)"
                )
            complete = False
        else:
            audio = info.data_size
    expected = info.seconds(audio)
    if mp3_seconds + LENGTH_TOLERANCE < expected:
        message = (
            f"the mp3 decodes to {mp3_seconds:.2f} s of the {expected:.2f} s of audio given to ffmpeg "
            "(not published cut)"
        )
        raise BadAudio(message) if last_try else IncompleteMp3(message)
    return complete


async def _collect(stdout: asyncio.StreamReader, body: IO[bytes], counter: Mp3Counter) -> int:
    """Reads ffmpeg's mp3 output into `body`, counting its frames; returns its size."""
    size = 0
    while chunk := await stdout.read(READ_SIZE):
        counter.feed(chunk)
        body.write(chunk)
        size += len(chunk)
    return size


@dataclass
class _Ffmpeg:
    """A running ffmpeg process and its three pipes, attached to the event loop."""

    popen: subprocess.Popen[bytes]
    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader

    async def wait(self) -> int:
        return await asyncio.to_thread(self.popen.wait)


@contextlib.asynccontextmanager
async def _ffmpeg(command: list[str]) -> AsyncIterator[_Ffmpeg]:
    """Runs ffmpeg for the block; kills it (and reaps it) if it is still running when the block ends."""
    loop = asyncio.get_running_loop()
    popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    transports: list[asyncio.BaseTransport] = []
    try:
        assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
        _widen(popen.stdin)
        readers = [asyncio.StreamReader(limit=READ_SIZE), asyncio.StreamReader(limit=READ_SIZE)]
        for reader, pipe in zip(readers, (popen.stdout, popen.stderr), strict=True):
            transport, _ = await loop.connect_read_pipe(functools.partial(asyncio.StreamReaderProtocol, reader), pipe)
            transports.append(transport)
        protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader())
        writer, _ = await loop.connect_write_pipe(lambda: protocol, popen.stdin)
        transports.append(writer)
        yield _Ffmpeg(popen, asyncio.StreamWriter(writer, protocol, None, loop), readers[0], readers[1])
    finally:
        for attached in transports:
            attached.close()
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            await asyncio.to_thread(popen.wait)
        for end in (popen.stdin, popen.stdout, popen.stderr):
            if end is not None:
                end.close()


def _widen(pipe: IO[bytes]) -> None:
    """A 1 MiB stdin pipe (Linux) instead of 64 KiB, so ffmpeg rarely waits for the next write."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
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


async def _feed(stdin: asyncio.StreamWriter, head: bytes, chunks: AsyncIterator[bytes], ended: bool) -> int:
    """Writes the wav into ffmpeg's stdin; returns the bytes it took. A source error propagates."""
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
