"""Media's HTTP server for the download links (`[recordings] listen`).

GET /r/<call_id>/<n>.mp3?exp=<unix>&sig=<hmac>
  valid        → 302 to a fresh presigned S3 URL, or the local file (Range supported)
  tampered     → 403        expired / purged → 410        never the file otherwise
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from . import metrics
from .errors import StorageError
from .jobstore import PURGED, JobStore
from .links import PATH_PREFIX, Links
from .storage import LocalFile, Redirect, Storage

log = logging.getLogger(__name__)

_NAME = re.compile(r"([0-9]{1,4})\.mp3")


class LinkServer:
    def __init__(self, links: Links, jobs: JobStore, storage: Storage) -> None:
        self.links, self.jobs, self.storage = links, jobs, storage

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH_PREFIX + "/{call_id}/{name}", self.download)
        return app

    def _refuse(self, status: int, outcome: str, text: str) -> web.Response:
        metrics.LINK_HITS.labels(outcome).inc()
        return web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store"})

    async def download(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        name = _NAME.fullmatch(request.match_info["name"])
        if name is None:
            return self._refuse(403, "tampered", "invalid link")
        idx = int(name.group(1))
        verdict = self.links.check(call_id, idx, request.query.get("exp", ""), request.query.get("sig", ""))
        if verdict == "tampered":
            return self._refuse(403, "tampered", "invalid link signature")
        if verdict == "expired":
            return self._refuse(410, "expired", "this recording link has expired")
        found = await self.jobs.file(call_id, idx)
        if found is None or found[0] == PURGED:
            return self._refuse(410, "purged", "this recording was deleted (retention period over)")
        try:
            target = await self.storage.resolve(found[1].object_key)
        except StorageError as exc:
            log.error("cannot serve %s: %s", found[1].object_key, exc, extra={"call_id": call_id})
            metrics.ERRORS.labels("storage").inc()
            return self._refuse(503, "unavailable", "storage unavailable, try again later")
        if target is None:
            return self._refuse(410, "purged", "this recording is no longer stored")
        metrics.LINK_HITS.labels("ok").inc()
        if isinstance(target, Redirect):
            raise web.HTTPFound(target.url, headers={"Cache-Control": "no-store"})
        assert isinstance(target, LocalFile)
        return web.FileResponse(
            target.path,
            headers={
                "Content-Type": "audio/mpeg",
                "Cache-Control": "private, max-age=3600",
                "Content-Disposition": f'inline; filename="{call_id}-{idx}.mp3"',
            },
        )


async def start_http(server: LinkServer, listen: str) -> web.AppRunner:
    """Starts the link server on host:port; the caller cleans up the returned runner."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port))
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
