"""S3 storage (moto in server mode), full_info and analytics submission, through the real media process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from minio import Minio
from moto.server import ThreadedMotoServer

from tcxhooks.v1 import media_service_pb2
from tests.fakes.media_peers import Peers
from tests.helpers.net import free_port

from .conftest import Media, decode_mp3, ended_event, leg, make_wav, running_media

BUCKET = "tcxh-media-test"


class S3:
    """moto's S3 server on a fixed port; stop() and start() again keep its data (same process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3]:
    server = S3()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(s3_server: S3) -> str:
    return s3_server.address


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, peers: Peers, s3: str) -> Iterator[Media]:
    yield from running_media(
        tmp_path_factory.mktemp("media-s3"),
        peers,
        recordings={
            "storage": "s3",
            "s3_endpoint": s3,
            "s3_secure": "false",
            "s3_bucket": BUCKET,
            "s3_access_key": "testing",
            "s3_secret_key": "testing-secret",
            "full_info": "true",
        },
        analytics={"enabled": "true", "backend": "offline"},
    )


def test_s3_redirect_full_info_and_analytics(media: Media, peers: Peers, s3: str, tmp_path: Path) -> None:
    call_id = "251125184500_900-1"
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 2.5, channels=2), start=time.time() - 5)
    media.due(leg(call_id), ended_event(call_id))
    data = peers.wait_recording(call_id)
    ended = ended_event(call_id)  # full_info = true adds the call-ended fields
    assert (
        data["callerid"],
        data["user"],
        data["did"],
        data["finishtype"],
        data["transfer"],
        data["title"],
        data["duration"],
        data["didname"],
    ) == (ended.caller_id, "101", ended.did, "Ok", False, ended.title, 65, "Main line")
    [file] = data["files"]

    # The stable link redirects to a fresh, short-lived presigned URL of the object.
    first = httpx.get(file["url"], timeout=10)
    assert first.status_code == 302
    location = first.headers["location"]
    assert location.startswith(f"http://{s3}/{BUCKET}/{call_id}/") and "X-Amz-Signature=" in location
    assert "X-Amz-Expires=900" in location
    audio = httpx.get(location, timeout=10)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    seconds, channels = decode_mp3(audio.content)
    assert seconds == pytest.approx(2.5, abs=0.3) and channels == 2

    # Bucket created by media, object metadata, and the lifecycle rule as second line of retention.
    client = Minio(s3, access_key="testing", secret_key="testing-secret", secure=False)
    key = location.split(f"/{BUCKET}/", 1)[1].split("?", 1)[0]
    info = client.stat_object(BUCKET, key)
    assert info.content_type == "audio/mpeg"
    assert info.metadata["x-amz-meta-call-id"] == call_id and info.metadata["x-amz-meta-leg"] == "101"
    [rule] = client.get_bucket_lifecycle(BUCKET).rules
    assert rule.expiration.days == 31 and rule.status == "Enabled"

    # Analytics is told which file, never where: it reads the audio from media over gRPC.
    job = peers.analytics.wait_job(call_id)
    [audio_source] = job.audio
    assert (audio_source.file, audio_source.url, audio_source.object_key, audio_source.channels) == (1, "", key, 2)
    assert audio_source.duration_seconds == file["duration"]
    assert job.chain == call_id.rsplit("-", 1)[0]
    assert media.fetch_audio(call_id, 1) == audio.content
    with pytest.raises(grpc.RpcError) as missing:
        media.fetch_audio(call_id, 2)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # Purge after retention deletes the object itself; the link then answers 410.
    expires = media.recording(call_id).expire_time.seconds
    media.call("Purge", media_service_pb2.PurgeRequest(now=Timestamp(seconds=expires + 1)))
    assert not [o for o in client.list_objects(BUCKET, recursive=True)]
    assert httpx.get(file["url"], timeout=10).status_code == 410
    with pytest.raises(grpc.RpcError) as purged:
        media.fetch_audio(call_id, 1)
    assert purged.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_submission_analytics_refuses_for_good_fails_the_job_with_the_reason(
    media: Media, peers: Peers, tmp_path: Path
) -> None:
    call_id = "251125184500_902-1"
    peers.analytics.refuse.add(call_id)
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 1.0), start=time.time() - 2)
    media.due(leg(call_id), ended_event(call_id))
    assert peers.wait_recording(call_id)["files"]  # the recording webhook went out before the submission
    failed = media.wait_state(call_id, media_service_pb2.RECORDING_JOB_STATE_FAILED)
    assert failed.error == ("analytics Submit refused: INVALID_ARGUMENT no audio source this analytics can read (test)")


def test_s3_outage_is_retried_until_stored(media: Media, peers: Peers, s3_server: S3, tmp_path: Path) -> None:
    call_id = "251125184500_901-1"
    now = time.time()
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 1.0), start=now - 1, end=now)
    s3_server.stop()
    try:
        media.due(leg(call_id, end=now))
        deadline = time.monotonic() + 20
        while "S3 upload failed" not in media.recording(call_id).error:
            assert time.monotonic() < deadline, media.log()[-2000:]
            time.sleep(0.1)
        assert peers.recordings(call_id) == []
    finally:
        s3_server.start()
    [link] = peers.wait_recording(call_id)["links"]
    reply = httpx.get(link, follow_redirects=True, timeout=10)
    assert decode_mp3(reply.content)[0] == pytest.approx(1.0, abs=0.3)
