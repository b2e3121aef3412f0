"""OAuth client credentials: good and bad credentials, one live token per client, expiry, 401 everywhere."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
import pytest

from .conftest import CLIENT_ID, SECRET, Sim


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_token_reply_is_a_jwt_with_exp(sim: Sim) -> None:
    async with sim.session.post(
        sim.url + "/connect/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET},
    ) as reply:
        body = await reply.json()
    assert reply.status == 200
    assert body["token_type"] == "Bearer" and body["refresh_token"] is None and body["expires_in"] == 60
    claims = _claims(body["access_token"])
    assert claims["sub"] == CLIENT_ID
    assert abs(int(claims["exp"]) - (time.time() + 60)) < 5  # type: ignore[call-overload]


async def test_multipart_form_is_accepted(sim: Sim) -> None:
    form = aiohttp.FormData({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
    form._is_multipart = True  # 3CX's own samples send multipart form data
    async with sim.session.post(sim.url + "/connect/token", data=form) as reply:
        assert reply.status == 200


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"},
        {"grant_type": "client_credentials", "client_id": "other", "client_secret": SECRET},
        {"grant_type": "client_credentials"},
    ],
)
async def test_bad_credentials_get_401_json(sim: Sim, form: dict[str, str]) -> None:
    async with sim.session.post(sim.url + "/connect/token", data=form) as reply:
        assert reply.status == 401
        assert (await reply.json())["error"] == "unauthorized"


async def test_bad_grant_and_garbage_bodies_are_refused(sim: Sim) -> None:
    async with sim.session.post(sim.url + "/connect/token", data={"grant_type": "password"}) as reply:
        assert reply.status == 400
    async with sim.session.post(
        sim.url + "/connect/token", data=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    ) as reply:
        assert reply.status == 400


async def test_minting_again_invalidates_the_previous_token(sim: Sim) -> None:
    old = sim.bearer
    await sim.get("/callcontrol")
    await sim.token()
    await sim.get("/callcontrol")
    async with sim.session.get(sim.url + "/callcontrol", headers={"Authorization": f"Bearer {old}"}) as reply:
        assert reply.status == 401


async def test_every_api_needs_the_token(sim: Sim) -> None:
    for path in (
        "/callcontrol",
        "/callcontrol/101",
        "/callcontrol/101/participants",
        "/xapi/v1/Recordings",
        "/xapi/v1/Trunks",
        "/xapi/v1/Users",
    ):
        for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
            async with sim.session.get(sim.url + path, headers=headers) as reply:
                assert reply.status == 401, (path, headers)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with sim.session.ws_connect(sim.url + "/callcontrol/ws"):
            pass
    assert info.value.status == 401


async def test_expired_token_is_refused_until_a_new_one_is_minted(sim: Sim) -> None:
    async with sim.session.post(sim.url + "/sim/token/expire") as reply:
        assert (await reply.json())["expired"] == 1
    await sim.get("/callcontrol", status=401)
    await sim.token()
    await sim.get("/callcontrol")


async def test_download_accepts_access_token_query(sim: Sim) -> None:
    number = await sim.play("inbound_answered")
    rec_id = (await sim.wait_done(number))["recordings"][0]
    url = f"{sim.url}/xapi/v1/Recordings/Pbx.DownloadRecording(recId={rec_id})"
    async with sim.session.get(url, params={"access_token": sim.bearer}) as reply:
        assert reply.status == 200 and reply.content_type == "audio/x-wav"
    async with sim.session.get(url, params={"access_token": "forged"}) as reply:
        assert reply.status == 401
