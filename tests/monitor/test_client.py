"""PbxClient: token minting, refresh before expiry, one mint at a time, 401 → re-mint once, clear errors."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from aiohttp import web

from tcxhooks.monitor.config import MonitorSettings, PbxConfig
from tcxhooks.monitor.errors import PbxError, PbxHttpError
from tcxhooks.monitor.pbx.client import PbxClient, decode_json, jwt_expiry
from tcxhooks.monitor.pbx.http import InProcess, PbxAnswer, PbxRequest, Unreachable
from tcxhooks.platform.config import load_config
from tests.helpers.net import free_port

SECRET = "very-secret-api-key"


def make_jwt(exp: float) -> str:
    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'HS256'})}.{b64({'sub': 'crm', 'exp': exp})}.c2ln"


class FakePbx:
    def __init__(self, lifetime: float = 3600, expires_in: int = 60) -> None:
        self.lifetime, self.expires_in = lifetime, expires_in
        self.mints = 0
        self.valid: set[str] = set()
        self.reject_next = 0
        self.paths: list[str] = []

    async def handle(self, request: PbxRequest) -> PbxAnswer:
        if request.path == "/connect/token":
            form = dict(x.split("=", 1) for x in request.body.decode().split("&"))
            if form.get("client_secret") != SECRET or form.get("grant_type") != "client_credentials":
                return PbxAnswer.json(401, {"error": "unauthorized", "error_description": "bad client"})
            self.mints += 1
            await asyncio.sleep(0.01)
            token = make_jwt(time.time() + self.lifetime) + str(self.mints)
            self.valid = {token}
            return PbxAnswer.json(
                200,
                {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token, "refresh_token": None},
            )
        self.paths.append(request.path)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.reject_next:
            self.reject_next -= 1
            return PbxAnswer(401)
        if token not in self.valid:
            return PbxAnswer(401)
        if request.path == "/xapi/v1/missing":
            return PbxAnswer.json(404, {"error": {"code": "404", "message": "WARNINGS.XAPI.NOT_FOUND"}})
        if request.path == "/xapi/v1/Recordings/Pbx.DownloadRecording(recId=1)":
            return PbxAnswer(200, b"x" * 200_000, "audio/wav")
        return PbxAnswer.json(200, {"value": [{"Number": "101"}], "params": request.params})


def pbx_settings(**env: str) -> PbxConfig:
    """[pbx] as the monitor loads it from TCXH_PBX_* variables (`client_secret="s"`)."""
    variables = {"TCXH_PBX_URL": "http://pbx.test", "TCXH_PBX_CLIENT_ID": "crm"}
    variables.update({f"TCXH_PBX_{name.upper()}": value for name, value in env.items()})
    return load_config(None, (MonitorSettings,), env=variables)[MonitorSettings].pbx


def client(fake: FakePbx, secret: str = SECRET, margin: str = "30") -> PbxClient:
    settings = pbx_settings(client_secret=secret, token_margin=margin)
    return PbxClient(settings, InProcess(fake.handle))


def test_jwt_expiry_reads_exp_and_rejects_garbage() -> None:
    assert jwt_expiry(make_jwt(1234.0)) == 1234.0
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None


async def test_concurrent_callers_share_one_mint_and_get_json_passes_params() -> None:
    fake = FakePbx()
    pbx = client(fake)
    results = await asyncio.gather(*(pbx.get_json("/xapi/v1/Users", {"$top": 5}) for _ in range(10)))
    assert fake.mints == 1
    assert results[0] == {"value": [{"Number": "101"}], "params": {"$top": "5"}}
    await pbx.aclose()


async def test_refresh_margin_before_jwt_exp_not_expires_in() -> None:
    fake = FakePbx(lifetime=3600, expires_in=60)  # expires_in in the wrong unit must not matter
    pbx = client(fake)
    first = await pbx.token()
    assert await pbx.token() == first and fake.mints == 1
    fake.lifetime = 2  # the next token lives 2 s: the margin shrinks to half of it
    pbx._refresh_at = 0  # as if the margin before the first token's exp had been reached
    second = await pbx.token()
    assert second != first and fake.mints == 2
    assert await pbx.token() == second


async def test_401_mints_once_and_retries_then_gives_up() -> None:
    fake = FakePbx()
    pbx = client(fake)
    await pbx.token()
    fake.reject_next = 1
    assert (await pbx.get_json("/callcontrol"))["value"]
    assert fake.mints == 2
    fake.reject_next = 2
    with pytest.raises(PbxHttpError) as info:
        await pbx.get_json("/callcontrol")
    assert info.value.status == 401 and "GET /callcontrol" in str(info.value)
    await pbx.aclose()


async def test_errors_name_the_request_never_the_secret() -> None:
    fake = FakePbx()
    pbx = client(fake)
    with pytest.raises(PbxHttpError) as info:
        await pbx.get_json("/xapi/v1/missing")
    assert info.value.status == 404 and "WARNINGS.XAPI.NOT_FOUND" in str(info.value)
    bad = client(fake, secret="wrong-secret-value")
    with pytest.raises(PbxHttpError) as info:
        await bad.get_json("/callcontrol")
    assert info.value.status == 401 and "crm" in str(info.value) and "wrong-secret-value" not in str(info.value)

    down = PbxClient(pbx_settings(client_secret=SECRET, url=f"http://127.0.0.1:{free_port()}"))  # nobody listens
    with pytest.raises(PbxError) as err:
        await down.token()
    assert "cannot reach" in str(err.value) and SECRET not in str(err.value)
    await down.aclose()

    async def refuse(request: PbxRequest) -> PbxAnswer:
        raise Unreachable("ClientConnectorError: connection refused")

    with pytest.raises(PbxError) as err:
        await PbxClient(pbx_settings(client_secret=SECRET), InProcess(refuse)).get_json("/callcontrol")
    assert str(err.value) == (
        "POST /connect/token: cannot reach the PBX at http://pbx.test (ClientConnectorError: connection refused)"
    )


async def test_the_network_client_against_a_real_http_server() -> None:
    """aiohttp on the wire: the token form, OData parameters and paths as 3CX takes them, 401 → re-mint, a
    download in chunks, an error answer's message, and no redirect followed."""
    fake = FakePbx()

    async def serve(request: web.Request) -> web.Response:
        if request.path == "/moved":
            raise web.HTTPFound("/xapi/v1/Users")
        answer = await fake.handle(
            PbxRequest(request.method, request.path, dict(request.query), dict(request.headers), await request.read())
        )
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type or None)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pbx = PbxClient(pbx_settings(client_secret=SECRET, url=f"http://127.0.0.1:{port}"))
    try:
        odata = {"$filter": "Number eq '101' and Id gt 5", "$top": 5}
        answer = await pbx.get_json(
            "/xapi/v1/ReportCallLogData/Pbx.GetCallLogData(periodFrom=2026-12-01T10:00:00Z,sourceFilter='')", odata
        )
        assert answer["params"] == {"$filter": "Number eq '101' and Id gt 5", "$top": "5"}
        assert fake.paths == [
            "/xapi/v1/ReportCallLogData/Pbx.GetCallLogData(periodFrom=2026-12-01T10:00:00Z,sourceFilter='')"
        ]
        fake.reject_next = 1
        assert (await pbx.get_json("/callcontrol"))["value"] and fake.mints == 2
        chunks = [c async for c in pbx.stream("/xapi/v1/Recordings/Pbx.DownloadRecording(recId=1)")]
        assert b"".join(chunks) == b"x" * 200_000
        with pytest.raises(PbxHttpError) as info:
            await pbx.get_json("/xapi/v1/missing")
        assert info.value.status == 404 and "WARNINGS.XAPI.NOT_FOUND" in str(info.value)
        with pytest.raises(PbxHttpError) as info:
            await pbx.get_json("/moved")
        assert info.value.status == 302
    finally:
        await pbx.aclose()
        await runner.cleanup()


async def test_stream_yields_the_body_in_chunks() -> None:
    fake = FakePbx()
    pbx = client(fake)
    chunks = [c async for c in pbx.stream("/xapi/v1/Recordings/Pbx.DownloadRecording(recId=1)")]
    assert b"".join(chunks) == b"x" * 200_000 and max(len(c) for c in chunks) <= 64 * 1024
    with pytest.raises(PbxHttpError):
        [c async for c in pbx.stream("/xapi/v1/missing")]


async def test_the_next_token_is_minted_ahead_of_expiry_without_a_request() -> None:
    fake = FakePbx(lifetime=2)  # 2 s tokens, refreshed 1 s before they expire
    pbx = client(fake, margin="1")
    stopping = asyncio.Event()
    keeper = asyncio.create_task(pbx.keep_token_fresh(stopping))
    async with asyncio.timeout(10):
        while fake.mints < 3:
            await asyncio.sleep(0.05)
    mints = fake.mints
    assert (await pbx.get_json("/callcontrol"))["value"] and fake.mints == mints  # no request waits for a mint
    stopping.set()
    await keeper
    await pbx.aclose()


def test_pbx_json_that_is_not_clean_unicode_is_read_with_replacements() -> None:
    body = b'{"name": "a\\ud800b", "pair": "\\ud83d\\ude00", "raw": "\xff\xfe", "n": [1, {"k\\udc00": "v"}]}'
    assert decode_json(body) == {
        "name": "a\ufffdb",
        "pair": "\U0001f600",
        "raw": "\ufffd\ufffd",
        "n": [1, {"k\ufffd": "v"}],
    }
    with pytest.raises(ValueError):
        decode_json(b"not json")
