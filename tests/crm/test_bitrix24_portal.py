"""The Bitrix24 adapter against the fake portal over HTTP: install, the calls of a call, token refresh,
the request limit, recordings, click-to-call, a lost answer, webhook auth, and `check`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tcxhooks.dispatcher.crm import CrmEndpoint
from tcxhooks.dispatcher.crm.bitrix24.mapping import Options
from tcxhooks.dispatcher.sinks import Verdict
from tests.crm.portal import event, recording, stand


async def test_install_keeps_the_tokens_binds_click_to_call_and_check_passes(tmp_path: Path) -> None:
    async with stand(tmp_path, click_to_call=True) as s:
        before = await s.sink.check()
        assert not before[0].ok and "not installed" in before[0].detail and "/crm/b24/install" in before[0].fix
        endpoint = CrmEndpoint(s.sink, "bitrix24")
        assert (await endpoint.ping()).verdict is Verdict.RETRY
        answer = await s.install()
        assert answer["status"] == 200
        pinged = await endpoint.ping()
        assert pinged.verdict is Verdict.DELIVERED and "installed" in pinged.response
        for _ in range(100):
            if (await s.state())["handlers"]:
                break
            await asyncio.sleep(0.05)
        assert (await s.state())["handlers"][0]["handler"] == f"{s.listener_url}/crm/b24/event"
        lines = {line.item: line for line in await s.sink.check()}
        assert all(line.ok for line in lines.values()), lines
        assert "101→11" in lines["b24 users"].detail and "default_user 1" in lines["b24 users"].detail
        methods = await s.methods()
        assert not any(m.startswith(("telephony.externalCall", "crm.")) or m.endswith(".add") for m in methods)


async def test_an_install_for_another_portal_or_another_app_is_refused(tmp_path: Path) -> None:
    async with stand(tmp_path, url="https://other.bitrix24.ru") as s:
        answer = await s.install()
        assert answer["status"] == 403
        assert await s.sink.tokens.current() is None
    async with stand(tmp_path / "2", client_id="local.someone.else") as s:
        assert (await s.install())["status"] == 403


async def test_an_inbound_call_becomes_register_then_finish_with_the_recording(tmp_path: Path) -> None:
    async with stand(tmp_path) as s:
        await s.install()
        for e in (
            event("ringing", 0, "101"),
            event("answered", 1, "101"),
            event("ended", 1, "101", finish="Ok", duration_seconds=65, title="Main line"),
            recording(1, s.media_url + "/r/1.mp3"),
        ):
            reply = await s.sink.deliver(e)
            assert reply.verdict == "delivered", reply
        assert await s.methods() == [
            "app.info",
            "user.get",
            "telephony.externalLine.get",
            "telephony.externalLine.add",
            "telephony.externalCall.register",
            "telephony.externalCall.finish",
            "telephony.externalCall.attachRecord",
        ]
        state = await s.state()
        row = state["statistics"][0]
        assert (row["PORTAL_USER_ID"], row["CALL_DURATION"], row["CALL_FAILED_CODE"]) == (11, 65, "200")
        assert row["EXTERNAL_CALL_ID"] == "251125184500_698-0" and row["PORTAL_NUMBER"] == "74951234567"
        assert state["files"][0]["SIZE"] == len(b"ID3") + 411 and state["files"][0]["SOURCE"] == "upload"


async def test_a_link_the_portal_cannot_fetch_is_uploaded_instead(tmp_path: Path) -> None:
    async with stand(tmp_path, options=Options(recording="link")) as s:
        await s.install()
        for e in (
            event("ringing", 0, "101"),
            event("ended", 1, "101", finish="Ok", duration_seconds=5),
            recording(1, s.media_url + "/r/1.mp3"),
        ):
            assert (await s.sink.deliver(e)).verdict == "delivered"
        attach = [c for c in await s.calls() if c["method"] == "telephony.externalCall.attachRecord"]
        assert [c["status"] for c in attach] == [400, 200]  # the private link is refused, the upload taken
        assert "RECORD_URL" in attach[0]["params"] and "FILE_CONTENT" in attach[1]["params"]


async def test_an_expired_token_is_refreshed_and_the_call_repeated(tmp_path: Path) -> None:
    async with stand(tmp_path) as s:
        await s.install()
        first = await s.sink.tokens.current()
        await s.fake("/fake/expire")
        assert (await s.sink.deliver(event("ringing", 0, "101"))).verdict == "delivered"
        calls = await s.calls()
        assert [c["method"] for c in calls if c["status"] == 401] == ["user.get"]
        assert any(c["method"] == "oauth/token" for c in calls)
        again = await s.sink.tokens.current()
        assert first is not None and again is not None and again.refresh_token != first.refresh_token
        assert await s.legs.value("b24", "oauth") is not None and again.refresh_token in str(
            await s.legs.value("b24", "oauth")
        )


async def test_the_portal_rate_limiting_us_loses_nothing(tmp_path: Path) -> None:
    # our bucket is bigger than what the portal has left for us (other applications share it)
    async with stand(tmp_path, limits={"limit": 3, "drain": 4.0}, rate=4.0, burst=50) as s:
        await s.install()
        chains = [f"2511251845{n:02d}_{700 + n}" for n in range(6)]
        replies = await asyncio.gather(
            *[s.sink.deliver(event("ended", 1, "101", chain=c, finish="Ok", duration_seconds=3)) for c in chains]
        )
        assert [r.verdict for r in replies] == ["delivered"] * 6
        calls = await s.calls()
        assert any(c["error"] == "QUERY_LIMIT_EXCEEDED" for c in calls)
        state = await s.state()
        assert sorted(r["EXTERNAL_CALL_ID"] for r in state["statistics"]) == sorted(f"{c}-1" for c in chains)


async def test_a_finish_whose_answer_was_lost_is_not_repeated(tmp_path: Path) -> None:
    async with stand(tmp_path) as s:
        await s.install()
        await s.sink.deliver(event("ringing", 0, "101"))
        await s.fake(
            "/fake/fail",
            {"method": "telephony.externalCall.finish", "status": 500, "error": "INTERNAL_SERVER_ERROR", "after": True},
        )
        ended = event("ended", 1, "101", finish="Ok", duration_seconds=9)
        assert (await s.sink.deliver(ended)).verdict == "retry"
        assert (await s.sink.deliver(ended)).verdict == "delivered"
        methods = await s.methods()
        assert methods[-3:] == [
            "telephony.externalCall.finish",
            "telephony.externalCall.finish",
            "voximplant.statistic.get",
        ]
        assert len((await s.state())["statistics"]) == 1


async def test_click_to_call_places_the_call_and_finishes_it_under_the_portal_call_id(tmp_path: Path) -> None:
    async with stand(tmp_path, click_to_call=True) as s:
        await s.install()
        await s.sink.directory.users()
        clicked = await s.fake("/fake/click", {"user_id": 12, "phone": "+79031112233"})
        assert clicked["handlers"][0]["status"] == 200
        for _ in range(100):
            if s.placed:
                break
            await asyncio.sleep(0.05)
        assert s.placed == [("102", "+79031112233")]
        chain = "251125184600_700"
        for e in (
            event("answered", 1, "102", chain=chain, direction="out", caller="79031112233"),
            event(
                "ended", 1, "102", chain=chain, direction="out", caller="79031112233", finish="Ok", duration_seconds=7
            ),
        ):
            assert (await s.sink.deliver(e)).verdict == "delivered"
        state = await s.state()
        assert len(state["registrations"]) == 1  # the portal's own; ours never registered
        assert state["statistics"][0]["CALL_ID"] == clicked["call_id"]
        assert state["statistics"][0]["CALL_DURATION"] == 7


async def test_events_with_a_wrong_application_token_are_refused(tmp_path: Path) -> None:
    async with stand(tmp_path, click_to_call=True) as s:
        await s.install()
        body = (
            "event=ONEXTERNALCALLSTART&data[USER_ID]=12&data[PHONE_NUMBER]=1&data[CALL_ID]=x&auth[application_token]=no"
        )
        async with s.http.post(
            f"{s.listener_url}/crm/b24/event", data=body, headers={"content-type": "application/x-www-form-urlencoded"}
        ) as reply:
            assert reply.status == 401
        assert s.placed == []


async def test_webhook_auth_is_refused_for_telephony_and_check_says_how_to_fix_it(tmp_path: Path) -> None:
    async with stand(tmp_path, webhook=True) as s:
        lines = await s.sink.check()
        assert len(lines) == 1 and not lines[0].ok and "WRONG_AUTH_TYPE" in lines[0].detail
        assert "local server-side application" in lines[0].fix
        reply = await s.sink.deliver(event("ringing", 0, "101"))
        assert reply.verdict == "gone" and "WRONG_AUTH_TYPE" in reply.error
        assert "fakewebhookcode" not in reply.error + reply.summary + lines[0].detail


async def test_a_portal_that_lets_webhooks_call_telephony_methods_works_through_one(tmp_path: Path) -> None:
    async with stand(tmp_path, webhook=True, portal={"webhook_telephony": True}) as s:
        assert all(line.ok for line in await s.sink.check())
        for e in (event("ringing", 0, "101"), event("ended", 1, "101", finish="Ok", duration_seconds=4)):
            assert (await s.sink.deliver(e)).verdict == "delivered"
        assert len((await s.state())["statistics"]) == 1
