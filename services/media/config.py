"""The media service's settings: [recordings] (docs/config.md), and the keys of [pbx] and [analytics] it
reads."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tcxhooks.platform.config import Missing, Section, Settings, key
from tcxhooks.platform.values import base_url, boolean, choice, duration, host_port, optional, text, whole


def _clock_time(value: str) -> dt.time:
    try:
        return dt.datetime.strptime(value.strip(), "%H:%M").time()
    except ValueError:
        raise ValueError("a local time HH:MM such as 03:00") from None


def _bitrate(value: str) -> str:
    value = value.strip().lower()
    if not re.fullmatch(r"\d{1,3}k", value):
        raise ValueError("a bitrate such as 32k, 64k or 128k")
    return value


@dataclass(frozen=True)
class RecordingsConfig(Section):
    """Call recordings: converted to mp3, stored in a local folder or S3 (MinIO or any S3), and
    sent to the CRM as signed download links served by the media service."""

    SECTION = "recordings"
    enabled: bool = key("true", boolean, "convert the recordings and send recording webhooks")
    full_info: bool = key("false", boolean, "add the call-ended fields to the recording webhook")
    retention_days: int = key("90", whole(1), "days the mp3 files (and their links) are kept")
    purge_at: dt.time = key("03:00", _clock_time, "local time of the nightly purge")
    storage: str = key("local", choice("local", "s3"), "local (a folder) or s3 (MinIO or any S3)")
    local_dir: str = key("./data/recordings", text, "the mp3 folder, with storage = local")
    listen: str = key("127.0.0.1:8480", host_port, "host:port of media's HTTP server, which serves the links")
    public_url: str = key(
        "http://127.0.0.1:8480", base_url, "the links' base URL as CRMs reach it (e.g. through an ingress)"
    )
    bitrate: str = key("64k", _bitrate, "mp3 bitrate, e.g. 32k or 64k")
    grace: float = key("3", duration, "how long to wait for late wav files after hangup")
    jobs: int = key("0", whole(0, 64), "parallel transcodes (0: as many as the container's CPU limit allows)")
    link_secret: str = key(
        "",
        text,
        "HMAC key of the links; empty: a key generated once and kept only in the "
        "store (wiping the store breaks every link sent)",
        secret=True,
    )
    link_secret_previous: str = key(
        "",
        text,
        "the key before a rotation: links signed with it stay valid (remove it retention_days after the rotation)",
        secret=True,
    )
    s3_endpoint: str = key("minio:9000", host_port, "host:port of the S3 server")
    s3_public_endpoint: str = key(
        "", optional(host_port), "host:port CRMs use for presigned URLs (default s3_endpoint)"
    )
    s3_access_key: str = key("", text, "S3 access key", secret=True)
    s3_secret_key: str = key("", text, "S3 secret key", secret=True)
    s3_bucket: str = key("recordings", text, "the bucket the mp3 files go to")
    s3_secure: bool = key("true", boolean, "use https to S3")
    s3_region: str = key("us-east-1", text, "S3 region")


@dataclass(frozen=True)
class PbxRecordings(Section):
    """[pbx] as the media service reads it (the monitor owns the section): where recordings come from."""

    SECTION = "pbx"
    OWNED = False
    recordings: str = key("xapi", choice("xapi", "folder"))
    recordings_dir: str = key("", text)


@dataclass(frozen=True)
class AnalyticsSwitch(Section):
    """[analytics] as the media service reads it (the analytics service owns the section): whether to
    hand recordings over for transcription."""

    SECTION = "analytics"
    OWNED = False
    enabled: bool = key("false", boolean)


@dataclass(frozen=True)
class MediaSettings(Settings):
    recordings: RecordingsConfig
    pbx: PbxRecordings
    analytics: AnalyticsSwitch

    def missing(self) -> Iterator[Missing]:
        if self.pbx.recordings == "folder" and not self.pbx.recordings_dir:
            yield Missing("pbx", "recordings_dir", "a folder with recordings = folder")
        if self.recordings.storage == "s3":
            for name in ("s3_access_key", "s3_secret_key"):
                if not getattr(self.recordings, name):
                    yield Missing("recordings", name, "S3 credentials with storage = s3")
