"""Media benchmark: wav → mp3 speed against the ffmpeg CLI, and wav-appears → recording-published latency.

    python bench/media.py            # 10-minute 8 kHz wav, 7 rounds; 10 calls per latency mode
    python bench/media.py --smoke    # 1-minute wav, 1 round, 2 calls: proves the benchmark still works

Transcoding: the same wav through our Transcoder (file read in chunks, piped through the
imageio-ffmpeg binary driven by ffmpeg-python) and through the plain ffmpeg CLI reading and
writing files, alternately in the same run; the ratio is CLI time / our time (target ≥ 0.9),
on the best round of each (least disturbed by other load) and on the medians.

Latency: the real media and dispatcher processes and a fake CRM. Each call's leg ends
(RecordingsDue), then its 30 s wav appears a moment later, as on a real PBX (in the recordings
folder, or in the fake monitor's XAPI list); measured from the moment the file is complete to the
moment the CRM receives the `recording.ready` webhook (target ≤ 1.5 s + transcoding).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tcxhooks.media.sources import file_reader
from tcxhooks.media.transcode import Transcoder, ffmpeg_exe
from tests.fakes.media_peers import Peers
from tests.media.conftest import Media, leg, make_wav, media_config

GRACE = 3.0
APPEAR_AFTER = (0.2, 1.0, 1.8)  # seconds between hangup and the wav being complete


async def ours(path: Path, transcoder: Transcoder) -> tuple[float, float]:
    started = time.perf_counter()
    mp3 = await transcoder.to_mp3(file_reader(path)())
    mp3.close()
    return time.perf_counter() - started, mp3.duration


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cli(path: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(path),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-f",
            "mp3",
            str(out),
        ],
        check=True,
    )
    return time.perf_counter() - started


def transcoding(folder: Path, minutes: float, rounds: int) -> list[tuple[str, str, str]]:
    wav = make_wav(folder / "long.wav", minutes * 60)
    transcoder = Transcoder("64k", jobs=1)
    loop = asyncio.new_event_loop()  # one loop for every round, as in the service
    loop.run_until_complete(ours(wav, transcoder))  # warm-up of both (first process start, page cache)
    cli(wav, folder / "cli.mp3")
    ours_times, cli_times, duration = [], [], 0.0
    ours_cpu = cli_cpu = 0.0
    for _ in range(rounds):
        before = cpu_seconds()
        seconds, duration = loop.run_until_complete(ours(wav, transcoder))
        middle = cpu_seconds()
        ours_times.append(seconds)
        cli_times.append(cli(wav, folder / "cli.mp3"))
        ours_cpu += middle - before
        cli_cpu += cpu_seconds() - middle
    loop.close()
    mine, theirs = min(ours_times), min(cli_times)
    mine_median, theirs_median = statistics.median(ours_times), statistics.median(cli_times)
    return [
        ("wav", f"{minutes:g} min 8 kHz mono, {wav.stat().st_size / 1e6:.1f} MB", f"{rounds} alternating rounds"),
        (
            "tcxhooks transcoder",
            f"best {mine * 1000:.0f} ms, median {mine_median * 1000:.0f} ms",
            f"{duration / mine:.0f}x real time",
        ),
        (
            "ffmpeg CLI, same file",
            f"best {theirs * 1000:.0f} ms, median {theirs_median * 1000:.0f} ms",
            f"{duration / theirs:.0f}x real time",
        ),
        (
            "speed ratio (CLI time / ours)",
            f"best {theirs / mine:.2f}, median {theirs_median / mine_median:.2f}",
            "target >= 0.90",
        ),
        (
            "CPU per file (ours / CLI)",
            f"{ours_cpu / rounds * 1000:.0f} ms / {cli_cpu / rounds * 1000:.0f} ms",
            f"ratio {cli_cpu / ours_cpu:.2f} (steady under load)",
        ),
    ]


def latency(folder: Path, peers: Peers, mode: str, calls: int, number: int) -> tuple[list[float], float]:
    pbx = folder / "pbx"
    pbx.mkdir()
    sections: dict[str, dict[str, object]] = {"recordings": {"grace": str(GRACE)}, "log": {"level": "warning"}}
    if mode == "folder":
        sections["pbx"] = {"recordings": "folder", "recordings_dir": str(pbx)}
    media = Media(media_config(folder, peers, **sections), folder)
    media.start()
    wav = make_wav(folder / "call.wav", 30).read_bytes()
    samples: list[float] = []
    try:
        for i in range(calls):
            call_id = f"251125184500_{number + i}-1"
            delay = APPEAR_AFTER[i % len(APPEAR_AFTER)]
            hangup = time.time()
            ext = str(200 + i)  # one extension per call: calls of one extension do not overlap
            media.due(leg(call_id, dn=ext, start=hangup - 30, end=hangup))
            time.sleep(delay)
            target = pbx / ext / f"[]_79161234567-{ext}_20251125184500({number + i}).wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wav)
            appeared = time.time()
            if mode == "xapi":
                peers.monitor.add(call_id, target, start=hangup - 30, end=hangup, visible_at=appeared)
            peers.wait_recording(call_id, timeout=60)
            samples.append(peers.recordings(call_id)[0].received - appeared)
        transcode = media.metric("tcxhooks_media_transcode_seconds_sum") / max(
            1.0, media.metric("tcxhooks_media_transcode_seconds_count")
        )
    finally:
        media.stop()
    return samples, transcode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short run")
    args = parser.parse_args()
    minutes, rounds, calls = (1.0, 1, 2) if args.smoke else (10.0, 7, 10)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        folder = Path(tmp)
        rows += transcoding(folder, minutes, rounds)
        peers = Peers(folder)
        try:
            for n, mode in enumerate(("folder", "xapi")):
                work = folder / mode
                work.mkdir()
                samples, transcode = latency(work, peers, mode, calls, 1000 * (n + 1))
                rows.append(
                    (
                        f"latency {mode}: wav complete -> webhook",
                        f"p50 {statistics.median(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms",
                        f"target <= 1500 ms + transcoding ({transcode * 1000:.0f} ms per 30 s file)",
                    )
                )
        finally:
            peers.stop()
    rows.insert(
        len(rows) - 2,
        (
            "latency setup",
            f"grace {GRACE:g} s, 30 s wav complete {'/'.join(f'{d:g}' for d in APPEAR_AFTER)} s after hangup",
            f"{calls} calls per mode",
        ),
    )
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'measure':<{width[0]}}  {'value':<{width[1]}}  note")
    print(f"{'-' * width[0]}  {'-' * width[1]}  {'-' * width[2]}")
    for name, value, note in rows:
        print(f"{name:<{width[0]}}  {value:<{width[1]}}  {note}")


if __name__ == "__main__":
    main()
