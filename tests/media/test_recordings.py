"""Recordings through the real media process (xapi source via a fake monitor, local storage)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tcxhooks.media.links import Links
from tcxhooks.v1 import media_service_pb2
from tests.fakes.media_peers import Peers
from tests.helpers.services import wait_until

from .conftest import LINK_SECRET, Media, decode_mp3, ended_event, leg, make_wav, running_media, wav_with_format

_numbers = itertools.count(700)
DONE = media_service_pb2.RECORDING_JOB_STATE_DONE
FAILED = media_service_pb2.RECORDING_JOB_STATE_FAILED
PURGED = media_service_pb2.RECORDING_JOB_STATE_PURGED


def new_call_id() -> str:
    return f"251125184500_{next(_numbers)}-1"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, peers: Peers) -> Iterator[Media]:
    yield from running_media(tmp_path_factory.mktemp("media"), peers)


def test_single_file_becomes_one_mp3_link(media: Media, peers: Peers, tmp_path: Path) -> None:
    call_id = new_call_id()
    now = time.time()
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 3.0), start=now - 3, end=now)
    assert media.due(leg(call_id, end=now), ended_event(call_id)) is False
    assert media.due(leg(call_id)) is True  # idempotent on the leg's call id

    data = peers.wait_recording(call_id)
    assert "finishtype" not in data  # full_info = false
    [file] = data["files"]
    assert data["links"] == [file["url"]]
    assert abs(file["duration"] - 3.0) < 0.3
    reply = httpx.get(file["url"], timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"] == "audio/mpeg"
    assert len(reply.content) == file["size"]
    seconds, channels = decode_mp3(reply.content)
    assert abs(seconds - 3.0) < 0.3 and channels == 1

    # A browser player seeks with Range requests.
    part = httpx.get(file["url"], headers={"Range": "bytes=100-1099"}, timeout=10)
    assert part.status_code == 206
    assert part.content == reply.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(reply.content)}"

    state = media.wait_state(call_id, DONE)
    assert [f.url for f in state.files] == [file["url"]]
    assert len(peers.recordings(call_id)) == 1
    assert media.fetch_audio(call_id, 1) == reply.content  # what analytics reads, over gRPC


def test_mobile_reconnect_files_in_recording_order(media: Media, peers: Peers, tmp_path: Path) -> None:
    call_id = new_call_id()
    now = time.time()
    peers.monitor.add(call_id, make_wav(tmp_path / "first.wav", 2.0), start=now - 30)
    peers.monitor.add(call_id, make_wav(tmp_path / "third.wav", 1.0, channels=2), start=now - 5)
    peers.monitor.add(call_id, make_wav(tmp_path / "second.wav", 4.0), start=now - 20)
    media.due(leg(call_id))
    files = peers.wait_recording(call_id)["files"]
    decoded = [decode_mp3(httpx.get(f["url"], timeout=10).content) for f in files]
    assert [round(seconds) for seconds, _ in decoded] == [2, 4, 1]
    assert [channels for _, channels in decoded] == [1, 1, 2]  # stereo stays stereo
    assert [round(f["duration"]) for f in files] == [2, 4, 1]


def test_late_file_within_grace_is_included(media: Media, peers: Peers, tmp_path: Path) -> None:
    call_id = new_call_id()
    now = time.time()
    # A reconnect's first file ended mid-call; the last one (ending at hangup) shows up late.
    peers.monitor.add(call_id, make_wav(tmp_path / "early.wav", 1.0), start=now - 10, end=now - 9)
    peers.monitor.add(call_id, make_wav(tmp_path / "late.wav", 2.0), start=now - 3, end=now, visible_at=now + 0.6)
    media.due(leg(call_id, end=now))
    files = peers.wait_recording(call_id)["files"]
    assert [round(f["duration"]) for f in files] == [1, 2]


def test_corrupt_and_empty_wavs_give_no_link(media: Media, peers: Peers, tmp_path: Path) -> None:
    bad_before = media.metric("tcxhooks_media_files_total", '{outcome="bad_audio"}')
    unsupported_before = media.metric("tcxhooks_media_files_total", '{outcome="unsupported_format"}')
    only_bad = new_call_id()
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not a wav file at all" * 100)
    empty = make_wav(tmp_path / "empty.wav", 0)
    peers.monitor.add(only_bad, garbage, start=time.time() - 5)
    peers.monitor.add(only_bad, empty, start=time.time() - 4)
    mixed = new_call_id()
    peers.monitor.add(mixed, garbage, start=time.time() - 9)
    mp3_in_wav = tmp_path / "mp3.wav"
    mp3_in_wav.write_bytes(wav_with_format(make_wav(tmp_path / "pcm.wav", 1.0).read_bytes(), 0x0055))
    peers.monitor.add(mixed, mp3_in_wav, start=time.time() - 7)
    peers.monitor.add(mixed, make_wav(tmp_path / "good.wav", 2.0), start=time.time() - 5)
    media.due(leg(only_bad))
    media.due(leg(mixed))

    failed = media.wait_state(only_bad, FAILED)
    assert "not a RIFF/WAVE file" in failed.error and "no audio data" in failed.error
    assert not failed.files
    [good] = peers.wait_recording(mixed)["files"]
    assert decode_mp3(httpx.get(good["url"], timeout=10).content)[0] == pytest.approx(2.0, abs=0.3)
    assert peers.recordings(only_bad) == []
    assert media.metric("tcxhooks_media_files_total", '{outcome="bad_audio"}') == bad_before + 3
    assert "is unusable: not a RIFF/WAVE file" in media.log()
    assert media.metric("tcxhooks_media_files_total", '{outcome="unsupported_format"}') == unsupported_before + 1
    assert "is unusable: wav format tag 0x0055 is not PCM or G.711 (A-law, µ-law)" in media.log()


def test_tampered_expired_and_purged_links(media: Media, peers: Peers, tmp_path: Path) -> None:
    call_id = new_call_id()
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 1.0), start=time.time() - 5)
    media.due(leg(call_id))
    [file] = peers.wait_recording(call_id)["links"]
    parts = urlsplit(file)
    query = dict(parse_qsl(parts.query))

    def variant(path: str = parts.path, **changes: str) -> str:
        return urlunsplit(parts._replace(path=path, query=urlencode({**query, **changes})))

    flipped = ("0" if query["sig"][0] != "0" else "1") + query["sig"][1:]
    assert httpx.get(variant(sig=flipped), timeout=10).status_code == 403
    assert httpx.get(variant(exp=str(int(query["exp"]) + 86400)), timeout=10).status_code == 403
    assert httpx.get(variant(path=parts.path.replace("/1.mp3", "/2.mp3")), timeout=10).status_code == 403
    assert httpx.get(urlunsplit(parts._replace(query="")), timeout=10).status_code == 403

    # The link expires at the end of retention (30 days here): a correctly signed past expiry is 410.
    expires = int(query["exp"])
    assert abs(expires - (time.time() + 30 * 86400)) < 120
    links = Links([LINK_SECRET.encode()], f"{parts.scheme}://{parts.netloc}")
    assert links.url(call_id, 1, expires) == file  # stable: same leg, same link
    assert httpx.get(links.url(call_id, 1, int(time.time()) - 1), timeout=10).status_code == 410

    # Purge at a simulated date: a day before expiry nothing goes; a day after, the recording does.
    def purge(at: float) -> int:
        return int(media.call("Purge", media_service_pb2.PurgeRequest(now=Timestamp(seconds=int(at)))).purged)

    assert purge(expires - 86400) == 0
    assert httpx.get(file, timeout=10).status_code == 200
    assert purge(expires + 86400) >= 1
    assert httpx.get(file, timeout=10).status_code == 410
    assert media.recording(call_id).state == PURGED
    stored = Path(media.folder / "recordings" / call_id)
    assert not stored.exists() or not list(stored.iterdir())
    assert media.metric("tcxhooks_media_link_hits_total", '{outcome="tampered"}') >= 4


def test_bad_requests_are_rejected_clearly(media: Media) -> None:
    import grpc

    for bad in (leg("../../etc-1"), leg("251125184500_1-1", dn="../101")):
        with pytest.raises(grpc.RpcError) as error:
            media.due(bad)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as missing:
        media.recording("251125184500_999999-1")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert media.metric("tcxhooks_media_errors_total", '{kind="bad_request"}') == 2


def test_leg_refused_by_the_monitor_fails_the_job(media: Media, peers: Peers) -> None:
    call_id = new_call_id()
    media.due(leg(call_id, start=0))
    failed = media.wait_state(call_id, FAILED)
    assert "INVALID_ARGUMENT" in failed.error and "start_unix_ms" in failed.error
    assert peers.recordings(call_id) == []


def test_publish_is_retried_until_the_dispatcher_acknowledges(media: Media, peers: Peers, tmp_path: Path) -> None:
    from tests.helpers.services import stop

    call_id = new_call_id()
    now = time.time()
    peers.monitor.add(call_id, make_wav(tmp_path / "a.wav", 1.0), start=now - 1, end=now)
    assert stop(peers.dispatcher) == 0
    try:
        media.due(leg(call_id, end=now))
        deadline = time.monotonic() + 20
        while "dispatcher Publish failed" not in media.recording(call_id).error:
            assert time.monotonic() < deadline, media.log()[-2000:]
            time.sleep(0.1)
        assert media.recording(call_id).state == media_service_pb2.RECORDING_JOB_STATE_PENDING
    finally:
        peers.start_dispatcher()
    [link] = peers.wait_recording(call_id)["links"]
    assert httpx.get(link, timeout=10).status_code == 200
    assert media.wait_state(call_id, DONE).error == ""


def test_wav_still_being_copied_is_retried_not_published_cut(media: Media, peers: Peers, tmp_path: Path) -> None:
    call_id = new_call_id()
    whole = make_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    copying = tmp_path / "copying.wav"
    copying.write_bytes(whole[: len(whole) // 2])  # the header already says 3 s
    short_before = media.metric("tcxhooks_media_files_total", '{outcome="short"}')
    peers.monitor.add(call_id, copying, start=time.time() - 5)
    media.due(leg(call_id))

    wait_until(lambda: f"recording job {call_id}: the wav ended after" in media.log(), what="the short wav's retry")
    assert peers.recordings(call_id) == []
    copying.write_bytes(whole)  # the copy completes before the retry

    [file] = peers.wait_recording(call_id)["files"]
    assert decode_mp3(httpx.get(file["url"], timeout=10).content)[0] == pytest.approx(3.0, abs=0.3)
    assert media.metric("tcxhooks_media_files_total", '{outcome="short"}') == short_before


def test_cut_wav_is_published_after_its_retries_with_a_warning(media: Media, peers: Peers, tmp_path: Path) -> None:
    call_id = new_call_id()
    whole = make_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: 44 + (len(whole) - 44) * 2 // 5])  # 40 % of its audio, for good
    short_before = media.metric("tcxhooks_media_files_total", '{outcome="short"}')
    recording_id = peers.monitor.add(call_id, cut, start=time.time() - 5)
    media.due(leg(call_id))

    [file] = peers.wait_recording(call_id, timeout=40)["files"]
    assert decode_mp3(httpx.get(file["url"], timeout=10).content)[0] == pytest.approx(1.2, abs=0.3)
    assert file["duration"] == pytest.approx(1.2, abs=0.3)
    assert media.metric("tcxhooks_media_files_total", '{outcome="short"}') == short_before + 1
    assert f"of {call_id} still ends before the size its wav header declares after 3 attempts" in media.log()
    assert peers.monitor.fetches.count(recording_id) == 4  # refused three times, then taken as it is
