"""A running fake Bitrix24 portal, a media stand-in serving one mp3, and a Bitrix24 sink wired to both
through its own listener, all in-process on port 0 (for the adapter tests)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tcxhooks.dispatcher.crm import LegStore, PlacedCall, SinkDeps
from tcxhooks.dispatcher.crm.bitrix24 import Bitrix24Settings, Bitrix24Sink
from tcxhooks.dispatcher.crm.listener import Listener
from tcxhooks.platform.store import open_store
from tcxhooks.simulator.crm.bitrix24 import Portal, create_app
from tcxhooks.v1 import common_pb2, events_pb2

MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)
KINDS = {"ringing": 1, "ringing_stopped": 2, "answered": 3, "ended": 4}


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Stand:
    portal: Portal
    portal_url: str
    media_url: str
    listener_url: str
    sink: Bitrix24Sink
    legs: LegStore
    http: aiohttp.ClientSession
    placed: list[tuple[str, str]]

    async def calls(self) -> list[dict[str, Any]]:
        async with self.http.get(self.portal_url + "/fake/calls") as reply:
            return list((await reply.json())["calls"])

    async def methods(self) -> list[str]:
        return [c["method"] for c in await self.calls() if c["method"] != "oauth/token"]

    async def fake(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.post(self.portal_url + path, json=body or {}) as reply:
            return await reply.json()

    async def state(self) -> Any:
        async with self.http.get(self.portal_url + "/fake/state") as reply:
            return await reply.json()

    async def install(self) -> Any:
        return await self.fake("/fake/install", {"url": f"{self.listener_url}/crm/b24/install"})


def event(kind: str, link: int, user: str = "", chain: str = "251125184500_698", **fields: Any) -> events_pb2.Event:
    """A call event as the monitor publishes it."""
    direction = fields.pop("direction", "in")
    call = events_pb2.CallEvent(
        type=KINDS[kind],
        call_id=f"{chain}-{link}",
        caller_id=fields.pop("caller", "79161234567"),
        did=fields.pop("did", "74951234567" if direction == "in" else ""),
        user=user,
        direction=common_pb2.DIRECTION_INCOMING if direction == "in" else common_pb2.DIRECTION_OUTGOING,
        user_type=common_pb2.USER_TYPE_EXT if user.startswith("1") else common_pb2.USER_TYPE_QUEUE,
        finish_type={"Ok": common_pb2.FINISH_TYPE_OK, "Missed": common_pb2.FINISH_TYPE_MISSED}.get(
            fields.pop("finish", ""), 0
        ),
        **fields,
    )
    out = events_pb2.Event(event_id=f"{chain}-{link}/{kind}/{user}", chain=chain, call=call)
    out.occur_time.GetCurrentTime()
    return out


def recording(link: int, url: str, chain: str = "251125184500_698") -> events_pb2.Event:
    out = events_pb2.Event(
        event_id=f"{chain}-{link}/recording",
        chain=chain,
        recording=events_pb2.RecordingReady(call_id=f"{chain}-{link}", files=[events_pb2.RecordingFile(url=url)]),
    )
    out.occur_time.GetCurrentTime()
    return out


@contextlib.asynccontextmanager
async def stand(tmp_path: Any, **overrides: Any) -> AsyncIterator[Stand]:
    """The whole stand; `overrides` set Bitrix24Settings fields (the portal's URLs are filled in)."""
    portal = Portal(**overrides.pop("portal", {}))
    portal_runner, portal_url = await serve(create_app(portal, **overrides.pop("limits", {})))

    async def mp3(request: web.Request) -> web.Response:
        return web.Response(body=MP3, content_type="audio/mpeg")

    media = web.Application()
    media.router.add_get("/r/{name}", mp3)
    media_runner, media_url = await serve(media)
    store = await open_store(f"sqlite:///{tmp_path / 'b24.db'}")
    legs = LegStore(store)
    await legs.migrate()
    placed: list[tuple[str, str]] = []

    async def place_call(extension: str, number: str) -> PlacedCall:
        placed.append((extension, number))
        return PlacedCall("251125184600_700", 700)

    webhook = overrides.pop("webhook", False)
    settings = Bitrix24Settings(
        name="b24",
        url=portal_url,
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        oauth_url=f"{portal_url}/oauth/token/",
        default_user=1,
        webhook_url=f"{portal_url}/rest/1/{portal.webhook_code}/" if webhook else "",
    )
    settings = dataclasses.replace(settings, **overrides)
    deps = SinkDeps(legs, "", place_call, 30)
    sink = Bitrix24Sink(settings, deps)
    listener = Listener([sink], "127.0.0.1:0")
    await listener.start()
    listener_url = f"http://127.0.0.1:{listener.port}"
    sink.deps = dataclasses.replace(deps, public_url=listener_url)  # known once the listener is bound
    http = aiohttp.ClientSession()
    try:
        yield Stand(portal, portal_url, media_url, listener_url, sink, legs, http, placed)
    finally:
        await http.close()
        await sink.close()
        await listener.close()
        await store.close()
        await media_runner.cleanup()
        await portal_runner.cleanup()
