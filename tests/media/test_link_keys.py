"""The link key over media's restarts: a key generated into the store, then set in the configuration,
then rotated. Links already sent keep working while a key that signed them is still accepted."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tcxhooks.v1 import media_service_pb2
from tests.fakes.media_peers import Peers
from tests.helpers.services import read_config

from .conftest import Media, leg, make_wav, media_config


def _status(media: Media, link: str) -> int:
    """GET of a link sent earlier, at this media process (its port changes with each start)."""
    here = urlsplit(read_config(media.config)["recordings"]["public_url"])
    moved = urlunsplit(urlsplit(link)._replace(scheme=here.scheme, netloc=here.netloc))
    return httpx.get(moved, timeout=10).status_code


def test_links_survive_setting_and_rotating_the_key(peers: Peers, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "a.wav", 1.0)

    def run(recordings: dict[str, object], call_id: str | None = None) -> tuple[Media, str]:
        media = Media(media_config(tmp_path, peers, recordings=recordings), tmp_path)
        media.start()
        link = ""
        if call_id is not None:
            now = time.time()
            peers.monitor.add(call_id, wav, start=now - 1, end=now)
            media.due(leg(call_id, end=now))
            [link] = peers.wait_recording(call_id)["links"]
            assert _status(media, link) == 200
        return media, link

    media, generated = run({"link_secret": ""}, "251125184500_960-1")  # a key made once, in the store
    assert media.stop() == 0
    media, first = run({"link_secret": "key-a"}, "251125184500_961-1")  # now set in the configuration
    try:
        assert _status(media, generated) == 200
    finally:
        assert media.stop() == 0
    media, _ = run({"link_secret": "key-b", "link_secret_previous": "key-a"})  # rotated
    try:
        assert _status(media, first) == 200 and _status(media, generated) == 200
        [again] = media.recording("251125184500_961-1").files
        assert again.url != first and _status(media, again.url) == 200  # new links carry the new key
    finally:
        assert media.stop() == 0
    media, _ = run({"link_secret": "key-b"})  # the previous key removed once its links expired
    try:
        assert _status(media, first) == 403
        assert _status(media, again.url) == 200 and _status(media, generated) == 200
        assert media.recording("251125184500_960-1").state == media_service_pb2.RECORDING_JOB_STATE_DONE
    finally:
        assert media.stop() == 0
