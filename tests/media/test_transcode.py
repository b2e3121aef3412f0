"""The transcoder on its own: an mp3 is complete or refused, whatever cut the audio on its way into
ffmpeg; only PCM and G.711 wavs are taken; the worker count follows the container's CPU limit."""

from __future__ import annotations

import asyncio
import stat
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import imageio_ffmpeg
import pytest

from tcxhooks.media.audio import ALAW, parse_wav_header
from tcxhooks.media.cpus import cgroup_quota, usable_cpus
from tcxhooks.media.errors import BadAudio, IncompleteMp3, UnsupportedFormat
from tcxhooks.media.transcode import Transcoder

from .conftest import decode_mp3, make_wav, wav_with_format

FOUR_MIB = 4 * 1024 * 1024


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _ffmpeg_fed_only(tmp_path: Path, limit: int) -> str:
    """An ffmpeg that gets only the first `limit` bytes of its input and exits 0 (the rest is read and
    dropped): the cut of the uvloop incident, where ffmpeg saw the end of its input after 4 MiB."""
    script = tmp_path / "ffmpeg-cut"
    script.write_text(
        f'#!/bin/sh\nhead -c {limit} | "{imageio_ffmpeg.get_ffmpeg_exe()}" "$@"\nstatus=$?\n'
        "cat >/dev/null\nexit $status\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


async def test_an_mp3_cut_on_its_way_through_ffmpeg_is_refused_never_returned_complete(tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "long.wav", 300).read_bytes()  # 4.8 MB: the cut keeps 262 s of 300
    transcoder = Transcoder("64k", 1, exe=_ffmpeg_fed_only(tmp_path, FOUR_MIB))
    with pytest.raises(IncompleteMp3, match=r"decodes to 262\.\d+ s of the 300\.00 s"):
        await transcoder.to_mp3(_chunks(wav))
    with pytest.raises(BadAudio, match="not published cut"):
        await transcoder.to_mp3(_chunks(wav), last_try=True)
    whole = await Transcoder("64k", 1).to_mp3(_chunks(wav))
    assert whole.complete and whole.duration == pytest.approx(300, abs=0.2)
    whole.close()


async def test_an_unfinalised_header_is_checked_against_the_audio_read(tmp_path: Path) -> None:
    wav = bytearray(make_wav(tmp_path / "a.wav", 20).read_bytes())
    struct.pack_into("<I", wav, 40, 0xFFFFFFFF)  # a writer that never patched the data size
    with pytest.raises(IncompleteMp3):
        await Transcoder("64k", 1, exe=_ffmpeg_fed_only(tmp_path, 100_000)).to_mp3(_chunks(bytes(wav)))
    mp3 = await Transcoder("64k", 1).to_mp3(_chunks(bytes(wav)))
    assert mp3.complete and mp3.duration == pytest.approx(20, abs=0.2)
    mp3.close()


def test_only_pcm_and_g711_wave_formats_are_taken(tmp_path: Path) -> None:
    pcm = make_wav(tmp_path / "pcm.wav", 0.5).read_bytes()
    assert parse_wav_header(pcm) is not None
    assert parse_wav_header(wav_with_format(pcm, 0xFFFE, sub_format=1)) is not None  # EXTENSIBLE PCM
    for tag, sub in ((0x0055, None), (0x0031, None), (0x0003, None), (0xFFFE, 0x0055)):  # mp3, GSM, float
        with pytest.raises(UnsupportedFormat, match=r"is not PCM or G\.711"):
            parse_wav_header(wav_with_format(pcm, tag, sub))


async def test_a_g711_alaw_wav_becomes_an_mp3(tmp_path: Path) -> None:
    alaw = tmp_path / "alaw.wav"
    proc = await asyncio.create_subprocess_exec(
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        str(make_wav(tmp_path / "pcm.wav", 2.0)),
        "-c:a",
        "pcm_alaw",
        str(alaw),
    )
    assert await proc.wait() == 0
    data = alaw.read_bytes()
    info = parse_wav_header(data)
    assert info is not None and info.format_tag == ALAW and info.block_align == 1
    mp3 = await Transcoder("32k", 1).to_mp3(_chunks(data))
    assert mp3.complete and decode_mp3(mp3.body.read())[0] == pytest.approx(2.0, abs=0.2)
    mp3.close()


def _cgroup(tmp_path: Path, proc_line: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_line)
    return root, proc


def test_workers_follow_the_cgroup_cpu_quota_not_the_nodes_cores(tmp_path: Path) -> None:
    # cgroup v2: 1.5 CPUs on the pod's cgroup, a looser limit above it; a 32-core node
    root, proc = _cgroup(
        tmp_path / "v2",
        "0::/kubepods/pod1/ctr\n",
        {
            "kubepods/pod1/ctr/cpu.max": "150000 100000\n",
            "kubepods/cpu.max": "800000 100000\n",
            "cpu.max": "max 100000",
        },
    )
    assert cgroup_quota(root, proc) == 1.5
    assert usable_cpus(root, proc, affinity=32) == 2
    assert usable_cpus(root, proc, affinity=1) == 1  # a cpuset of one CPU caps it
    # cgroup v1: quota / period on the cpu controller; -1 is no limit
    root, proc = _cgroup(
        tmp_path / "v1",
        "4:cpu,cpuacct:/docker/abc\n1:memory:/docker/abc\n",
        {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"},
    )
    assert usable_cpus(root, proc, affinity=32) == 1
    root, proc = _cgroup(
        tmp_path / "none",
        "4:cpu,cpuacct:/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_quota(root, proc) is None and usable_cpus(root, proc, affinity=6) == 6
    assert usable_cpus(tmp_path / "missing", tmp_path / "missing-proc", affinity=3) == 3
    assert Transcoder("64k", 0).slots == usable_cpus()
