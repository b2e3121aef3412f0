"""The dispatcher's CRM listener: adapters' routes under /crm/<name>/, HTTPS with its own certificate,
unknown paths and failing handlers answered without taking it down."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import trustme
from aiohttp import web

from tcxhooks.dispatcher.crm import CheckLine, Route, SinkReply
from tcxhooks.dispatcher.crm.listener import Listener
from tcxhooks.v1 import events_pb2


class Echo:
    name = "b24"

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def hello(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(await request.text())
        return web.Response(text="hello\n")

    async def broken(self, request: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug")

    def routes(self) -> list[Route]:
        return [Route("POST", "event", self.hello), Route("POST", "broken", self.broken)]

    async def deliver(self, event: events_pb2.Event) -> SinkReply:
        return SinkReply("delivered", 200, "")

    async def ping(self) -> SinkReply:
        return SinkReply("delivered", 200, "")

    async def run(self, stopping: asyncio.Event) -> None:
        await stopping.wait()

    async def check(self) -> list[CheckLine]:
        return []

    async def close(self) -> None:
        return None


async def test_routes_are_served_over_https_and_faults_stay_inside(tmp_path: Path) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "listener.pem"))
    echo = Echo()
    listener = Listener([echo], "127.0.0.1:0", tls_cert=str(tmp_path / "listener.pem"))
    await listener.start()
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    base = f"https://127.0.0.1:{listener.port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context)) as http:
            async with http.post(f"{base}/crm/b24/event", data="a=1") as reply:
                assert reply.status == 200 and await reply.text() == "hello\n"
            async with http.post(f"{base}/crm/b24/broken") as reply:
                assert reply.status == 500 and "a bug" not in await reply.text()
            async with http.post(f"{base}/crm/other/event") as reply:
                assert reply.status == 404
            async with http.get(f"{base}/crm/b24/event") as reply:
                assert reply.status in (404, 405)
            async with http.post(f"{base}/crm/b24/event", data="b=2") as reply:
                assert reply.status == 200  # still up after the fault
        assert echo.seen == ["a=1", "b=2"]
    finally:
        await listener.close()
