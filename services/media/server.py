"""Wiring of the media service: store, source, transcoder, storage, links, HTTP, jobs, purge, gRPC."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import NoReturn

from tcxhooks.platform.jobqueue import process_owner, replica_name
from tcxhooks.platform.runtime import App
from tcxhooks.platform.waiting import sleep_or_stop
from tcxhooks.v1 import media_service_pb2_grpc

from .config import MediaSettings, RecordingsConfig
from .errors import StorageError
from .http import LinkServer, start_http
from .jobs import Runner
from .jobstore import JobStore
from .links import Links
from .publisher import Publisher
from .retention import Retention
from .servicer import MediaServicer
from .sources import FolderSource, Source, XapiSource
from .storage import Storage, make_storage
from .transcode import Transcoder

log = logging.getLogger(__name__)


async def _setup_later(storage: Storage, stopping: asyncio.Event) -> None:
    """Creates the folder or bucket once the storage answers (the health check reports it meanwhile)."""
    while not await sleep_or_stop(5, stopping):
        try:
            await storage.setup()
            log.info("storage ready")
            return
        except StorageError as exc:
            log.warning("storage still not ready: %s", exc)


async def link_keys(config: RecordingsConfig, jobs: JobStore) -> list[bytes]:
    """The links' keys, the signing one first: `link_secret` (else a key generated into the store),
    then the keys links already sent may carry: `link_secret_previous`, and a generated key that is
    in the store from before `link_secret` was set."""
    if not config.link_secret:
        return [await jobs.link_key()]
    generated = await jobs.stored_link_key()
    return [k for k in (config.link_secret.encode(), config.link_secret_previous.encode(), generated) if k]


def _bad_config(app: App[MediaSettings], problem: str) -> NoReturn:
    """What the shared loader cannot know about media: one line, exit status 2."""
    print(f"tcxhooks: bad configuration: {app.config.path}: {problem}", file=sys.stderr)
    raise SystemExit(2)


async def build(app: App[MediaSettings]) -> None:
    config = app.settings.recordings
    pbx = app.settings.pbx
    jobs = JobStore(await app.open_store(), process_owner(replica_name(app.platform.services.media)))
    await jobs.migrate()
    if taken := await jobs.queue.take_back():
        log.info("took back %d recording job(s) of this replica's previous run", taken)
    try:
        storage = make_storage(config)
    except ValueError as exc:
        _bad_config(app, str(exc))
    try:
        await storage.setup()
    except StorageError as exc:
        log.error("storage not ready: %s; retrying in the background", exc)
        app.spawn(_setup_later(storage, app.stopping), "storage-setup")
    app.health.add_check("storage", storage.ping, critical=True)
    source: Source = (
        FolderSource(pbx.recordings_dir) if pbx.recordings == "folder" else XapiSource(app.channel("monitor"))
    )
    if source.kind == "folder":
        app.health.add_check("recordings_dir", source.ping, critical=True)
    links = Links(await link_keys(config, jobs), config.public_url)
    analytics = app.settings.analytics.enabled
    publisher = Publisher(app.channel("dispatcher"), app.channel("analytics") if analytics else None)
    runner = Runner(jobs, source, Transcoder(config.bitrate, config.jobs), storage, links, publisher, config, analytics)
    retention = Retention(jobs, storage)
    http = await start_http(LinkServer(links, jobs, storage), config.listen)
    app.stack.push_async_callback(http.cleanup)
    media_service_pb2_grpc.add_MediaServiceServicer_to_server(
        MediaServicer(config, jobs, links, retention, storage, runner.wake), app.server
    )
    app.spawn(runner.run(app.stopping), "jobs")
    app.spawn(retention.nightly(config.purge_at, app.stopping), "purge")
