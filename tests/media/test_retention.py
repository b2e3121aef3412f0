"""Retention through the real process: a purge that fails halfway resumes and never touches recordings
still in retention; a bad folder configuration stops media at start."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.v1 import media_service_pb2
from tests.fakes.media_peers import Peers
from tests.helpers.services import tcxhooks_command, write_config

from .conftest import leg, make_wav, running_media

DONE = media_service_pb2.RECORDING_JOB_STATE_DONE
PURGED = media_service_pb2.RECORDING_JOB_STATE_PURGED


def test_purge_fails_halfway_then_resumes_and_spares_recordings_in_retention(tmp_path: Path, peers: Peers) -> None:
    for media in running_media(tmp_path, peers):
        links: dict[str, str] = {}
        for n, name in enumerate(("a", "b", "c", "d")):
            if name == "d":
                time.sleep(2.1)  # d is stored two seconds later: still in retention at the simulated date
            call_id = f"251125184500_{960 + n}-1"
            now = time.time()
            peers.monitor.add(call_id, make_wav(tmp_path / f"{name}.wav", 1.0), start=now - 1, end=now)
            media.due(leg(call_id, end=now))
            [links[name]] = peers.wait_recording(call_id)["links"]
            media.wait_state(call_id, DONE)
        ids = {name: f"251125184500_{960 + n}-1" for n, name in enumerate("abcd")}
        at = Timestamp(seconds=media.recording(ids["c"]).expire_time.seconds + 1)

        # b's object cannot be deleted (a directory stands in its place): the purge stops there.
        [b_object] = (media.folder / "recordings" / ids["b"]).iterdir()
        b_object.unlink()
        (b_object / "blocker").mkdir(parents=True)
        with pytest.raises(grpc.RpcError) as failed:
            media.call("Purge", media_service_pb2.PurgeRequest(now=at))
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE and "purge incomplete" in failed.value.details()
        states = {name: media.recording(call_id).state for name, call_id in ids.items()}
        assert states == {"a": PURGED, "b": DONE, "c": DONE, "d": DONE}
        assert httpx.get(links["c"], timeout=10).status_code == 200  # c untouched by the failed run

        # Fixed, the next run finishes b and c; d is still in retention and stays.
        (b_object / "blocker").rmdir()
        b_object.rmdir()
        purged = media.call("Purge", media_service_pb2.PurgeRequest(now=at)).purged
        assert purged == 2
        states = {name: media.recording(call_id).state for name, call_id in ids.items()}
        assert states == {"a": PURGED, "b": PURGED, "c": PURGED, "d": DONE}
        assert [httpx.get(links[n], timeout=10).status_code for n in "abcd"] == [410, 410, 410, 200]
        assert media.metric("tcxhooks_media_purged_recordings_total") == 3
        assert media.metric("tcxhooks_media_purge_runs_total", '{outcome="failed"}') == 1


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"pbx": {"recordings": "folder"}}, "[pbx] recordings_dir is missing"),
        (
            {"recordings": {"storage": "s3", "s3_access_key": "k", "s3_secret_key": "s", "s3_bucket": "a/b"}},
            "[recordings] s3_bucket = 'a/b': expected an S3 bucket name",
        ),
    ],
)
def test_media_configuration_errors_exit_2(tmp_path: Path, sections: dict[str, dict[str, str]], message: str) -> None:
    config = write_config(tmp_path, **sections)
    result = subprocess.run(tcxhooks_command("media", "-c", str(config)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"tcxhooks: bad configuration: {config}: {message}" in result.stderr


def test_generated_link_key_is_kept_across_restarts(tmp_path: Path, peers: Peers) -> None:
    from .conftest import Media, media_config

    config = media_config(tmp_path, peers, recordings={"link_secret": ""})
    media = Media(config, tmp_path)
    media.start()
    try:
        call_id = "251125184500_970-1"
        now = time.time()
        peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 1.0), start=now - 1, end=now)
        media.due(leg(call_id, end=now))
        [link] = peers.wait_recording(call_id)["links"]
        assert httpx.get(link, timeout=10).status_code == 200
        assert media.stop() == 0
        media.start()
        assert httpx.get(link, timeout=10).status_code == 200
        assert [f.url for f in media.recording(call_id).files] == [link]
    finally:
        assert media.stop() == 0


def test_recordings_disabled_acknowledges_and_keeps_nothing(tmp_path: Path, peers: Peers) -> None:
    for media in running_media(tmp_path, peers, recordings={"enabled": "false"}):
        call_id = "251125184500_980-1"
        now = time.time()
        peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 1.0), start=now - 1, end=now)
        assert media.due(leg(call_id, end=now)) is False
        with pytest.raises(grpc.RpcError) as missing:
            media.recording(call_id)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert peers.monitor.fetches.count(peers.monitor.recordings[call_id][0].recording_id) == 0
