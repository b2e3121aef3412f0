"""`recordings = folder` (media on the PBX host) and kill -9 during transcoding, with the real process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tcxhooks.v1 import media_service_pb2
from tests.fakes.media_peers import DispatcherProxy, Peers

from .conftest import Media, decode_mp3, leg, make_wav, media_config, running_media

DONE = media_service_pb2.RECORDING_JOB_STATE_DONE
NO_RECORDING = media_service_pb2.RECORDING_JOB_STATE_NO_RECORDING
DUPLICATE_GRACE = 3.0  # seconds to wait for a webhook that must not come


@pytest.fixture(scope="module")
def pbx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pbx-recordings")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, peers: Peers, pbx_folder: Path) -> Iterator[Media]:
    yield from running_media(
        tmp_path_factory.mktemp("media-folder"), peers, pbx={"recordings": "folder", "recordings_dir": str(pbx_folder)}
    )


def test_folder_files_of_the_leg_once_complete(media: Media, peers: Peers, pbx_folder: Path, tmp_path: Path) -> None:
    call_id = "251125184500_800-1"
    now = time.time()
    ext = pbx_folder / "101"
    # Not this leg: another extension's file, and one of an earlier call of 101.
    make_wav(pbx_folder / "102" / "[]_102-79160000000_20251125184455(7).wav", 1.0)
    old = make_wav(ext / "[]_101-79160000000_20251125170000(3).wav", 5.0)
    os.utime(old, (now - 3600, now - 3600))
    # The first file of a mobile reconnect, finished 10 s before hangup.
    first = make_wav(ext / "[Ivan]_79161234567-101_20251125184400(8).wav", 2.0)
    os.utime(first, (now - 10, now - 10))

    media.due(leg(call_id, start=now - 40, end=now))
    # The last file appears after hangup and is still being written for a moment.
    data = make_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    last = ext / "[Ivan]_79161234567-101_20251125184430(9).wav"
    with open(last, "wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        time.sleep(0.5)
        handle.write(data[len(data) // 2 :])

    files = peers.wait_recording(call_id)["links"]
    decoded = [decode_mp3(httpx.get(url, timeout=10).content)[0] for url in files]
    assert [round(seconds) for seconds in decoded] == [2, 3]
    assert media.wait_state(call_id, DONE)


def test_folder_without_files_means_no_recording(media: Media, peers: Peers) -> None:
    call_id = "251125184500_801-1"
    media.due(leg(call_id, dn="555", start=time.time() - 30))
    media.wait_state(call_id, NO_RECORDING)
    assert peers.recordings(call_id) == []


def _ffmpeg_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if int(rest[1]) == pid and name.startswith("ffmpeg"):
                found.append(int(entry.name))
    return found


def test_kill9_during_transcoding_publishes_once_after_restart(peers: Peers, tmp_path: Path) -> None:
    call_id = "251125184500_850-1"
    peers.monitor.add(call_id, make_wav(tmp_path / "long.wav", 20 * 60), start=time.time() - 1300)
    media = Media(media_config(tmp_path, peers), tmp_path)
    peers.monitor.chunk_delay = 0.01  # the 19 MB stream takes a few seconds
    media.start()
    try:
        media.due(leg(call_id, start=time.time() - 1200))
        deadline = time.monotonic() + 30
        while not _ffmpeg_children(media.proc.pid):
            assert time.monotonic() < deadline, media.log()[-2000:]
            time.sleep(0.05)
        media.kill9()
        assert peers.recordings(call_id) == []
        peers.monitor.chunk_delay = 0.0
        media.start()
        data = peers.wait_recording(call_id, timeout=60)
        media.wait_state(call_id, DONE)
        assert "(uvloop event loop)" in media.log()
        assert "fork() handlers" not in media.log()  # ffmpeg never started by a fork() that runs gRPC's handlers
        assert [round(f["duration"]) for f in data["files"]] == [1200]
        assert len(peers.recordings(call_id)) == 1
    finally:
        peers.monitor.chunk_delay = 0.0
        assert media.stop() == 0


def test_kill9_while_the_dispatcher_is_down_resumes_at_publishing(peers: Peers, tmp_path: Path) -> None:
    from tests.helpers.services import stop

    call_id = "251125184500_851-1"
    now = time.time()
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 2.0), start=now - 2, end=now)
    media = Media(media_config(tmp_path, peers), tmp_path)
    media.start()
    assert stop(peers.dispatcher) == 0
    try:
        media.due(leg(call_id, end=now))
        deadline = time.monotonic() + 20
        while "dispatcher Publish failed" not in media.recording(call_id).error:  # stored, not yet announced
            assert time.monotonic() < deadline, media.log()[-2000:]
            time.sleep(0.1)
        media.kill9()
    finally:
        peers.start_dispatcher()
    (tmp_path / "media.log").rename(tmp_path / "media-before-kill.log")
    media.start()
    try:
        [link] = peers.wait_recording(call_id)["links"]
        media.wait_state(call_id, DONE)
        assert len(peers.recordings(call_id)) == 1
        assert decode_mp3(httpx.get(link, timeout=10).content)[0] == pytest.approx(2.0, abs=0.3)
        assert f"stored a.wav of {call_id}" not in media.log()  # resumed at publishing, not transcoded again
        assert peers.monitor.fetches.count(peers.monitor.recordings[call_id][0].recording_id) == 1
    finally:
        assert media.stop() == 0


def test_kill9_after_the_dispatcher_stored_the_event_sends_one_webhook(peers: Peers, tmp_path: Path) -> None:
    """Killed between the dispatcher's acknowledgement and media's own record of it, media publishes
    the recording again after the restart: the same event id, so the CRM still gets it once."""
    call_id = "251125184500_852-1"
    now = time.time()
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 2.0), start=now - 2, end=now)
    proxy = DispatcherProxy(peers.addresses["dispatcher"])
    media = Media(media_config(tmp_path, peers, services={"dispatcher": proxy.address}), tmp_path)
    try:
        proxy.hold = True
        media.start()
        media.due(leg(call_id, end=now))
        assert proxy.acknowledged.wait(30), media.log()[-2000:]
        media.kill9()
        proxy.release()
        assert [r.duplicate for r in proxy.replies] == [False]
        media.start()
        media.wait_state(call_id, DONE)
        assert [r.duplicate for r in proxy.replies] == [False, True]
        assert f"recording of {call_id} published (1 file(s)) again (the dispatcher had it)" in media.log()
        peers.wait_recording(call_id)
        time.sleep(DUPLICATE_GRACE)  # a second event would be delivered well within this
        assert len(peers.recordings(call_id)) == 1
    finally:
        proxy.stop()
        assert media.stop() == 0


def test_parallel_transcodes_are_bounded_by_jobs(peers: Peers, tmp_path: Path) -> None:
    now = time.time()
    wav = make_wav(tmp_path / "minute.wav", 60)
    call_ids = [f"251125184500_{860 + n}-1" for n in range(6)]
    for call_id in call_ids:
        peers.monitor.add(call_id, wav, start=now - 60, end=now)
    media = Media(media_config(tmp_path, peers, recordings={"jobs": "2"}), tmp_path)
    media.start()
    peers.monitor.chunk_delay = 0.03
    try:
        for call_id in call_ids:
            media.due(leg(call_id, end=now))
        most, deadline = 0, time.monotonic() + 60
        while not all(peers.recordings(call_id) for call_id in call_ids):
            assert time.monotonic() < deadline, media.log()[-2000:]
            most = max(most, len(_ffmpeg_children(media.proc.pid)))
            time.sleep(0.01)
        assert 1 <= most <= 2
    finally:
        peers.monitor.chunk_delay = 0.0
        assert media.stop() == 0
