"""[crm:NAME] sections: what each CRM requires, the checks on its values, secrets kept out of the
effective configuration, and the endpoint the dispatcher makes of it (its own retry schedule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcxhooks.dispatcher.config import DispatcherSettings
from tcxhooks.dispatcher.crm import LegStore, SinkDeps
from tcxhooks.dispatcher.crm.registry import build_sink
from tcxhooks.dispatcher.crm.zammad.settings import RETRY_SCHEDULE
from tcxhooks.dispatcher.server import crm_endpoint
from tcxhooks.platform.config import ConfigError, load_config
from tcxhooks.platform.settings import PlatformSettings
from tcxhooks.platform.store import open_store


def load(tmp_path: Path, text: str) -> DispatcherSettings:
    path = tmp_path / "t.ini"
    path.write_text(text, encoding="utf-8")
    return load_config(str(path), (PlatformSettings, DispatcherSettings), env={})[DispatcherSettings]


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as failure:
        load(tmp_path, text)
    return str(failure.value)


def test_each_crm_names_what_it_cannot_run_without(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        "[crm:b24]\ntype = bitrix24\n[crm:amo]\ntype = amocrm\n[crm:z]\ntype = zammad\n"
        "[crm:x]\nurl = https://x.example.com\n",
    )
    for line in (
        "[crm:b24] url is missing",
        "[crm:b24] client_id is missing",
        "[crm:b24] client_secret is missing",
        "[crm:amo] url is missing",
        "[crm:amo] auth_code is missing",
        "[crm:z] token is missing",
        "[crm:x] type is missing",
    ):
        assert line in text, text
    assert "[webhook] url" not in text  # CRM sections alone are a valid set of endpoints
    webhook_only = problems(
        tmp_path, "[crm:b24]\ntype = bitrix24\nwebhook_url = https://c.bitrix24.ru/rest/1/code/\nclick_to_call = true\n"
    )
    assert webhook_only.splitlines() == [
        f"{tmp_path / 't.ini'}: [dispatcher] public_url is missing: expected how "
        "the CRM reaches us for click-to-call (crm:b24)"
    ]


def test_values_are_checked_and_names_not_shared_with_webhooks(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        "[webhook:b24]\nurl = https://crm.example.com/\n[crm:b24]\ntype = bitrix25\n"
        "user_map = 101=17,x\nusers = 10a\n[crm:z]\ntype = zammad\nurl = https://z.example.com"
        "/api/v1/cti/secret\ntoken = t\nuser_map = 101=j.doe\n[crm:a]\ntype = amocrm\n"
        "url = https://a.amocrm.ru\ntoken = t\nuser_map = 101=j.doe\n",
    )
    for line in (
        "[crm:b24] type = 'bitrix25': expected bitrix24 or amocrm or zammad",
        "[crm:b24] user_map = '101=17,x': expected extension=user pairs",
        "[crm:b24] users = '10a'",
        "[crm:z] token is missing: expected the CTI token in its own key",
        "[crm:a] user_map is missing: expected amocrm user ids (numbers)",
    ):
        assert line in text, text
    named = problems(
        tmp_path,
        "[webhook:b24]\nurl = https://crm.example.com/\n[crm:b24]\ntype = zammad\n"
        "url = https://z.example.com\ntoken = t\n",
    )
    assert "[crm:b24] name is missing: expected a name no [webhook] section has" in named


async def test_the_sections_become_endpoints_with_their_budget_and_schedule(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[crm:b24]\ntype = bitrix24\nurl = https://c.bitrix24.ru\nclient_id = local.1\n"
        "client_secret = s3cret-value\nrate = 5\nburst = 250\nuser_map = 101=17\n"
        "[crm:z]\ntype = zammad\nurl = https://z.example.com\ntoken = cti-t0ken-value\n"
        "[crm:z2]\ntype = zammad\nurl = https://z.example.com\ntoken = t\nretry_schedule = 1s,3s\n",
    )
    store = await open_store(f"sqlite:///{tmp_path / 's.db'}")
    deps = SinkDeps(LegStore(store), "", None, 30)
    try:
        b24, z, z2 = (crm_endpoint(crm, build_sink(crm, deps)) for crm in settings.crms)
        assert b24.retry is None and b24.sink.kind == "bitrix24" and b24.sink.target == "https://c.bitrix24.ru/rest/"
        assert z.retry is not None and z.retry.schedule == RETRY_SCHEDULE and "cti-t0ken-value" not in z.sink.target
        assert z2.retry is not None and z2.retry.schedule == (1.0, 3.0)
        limiter = b24.sink.crm.http.limiter  # type: ignore[attr-defined]
        assert (limiter.rate, limiter.burst) == (5.0, 250)
        assert b24.sink.crm.settings.user_map == {"101": 17}  # type: ignore[attr-defined]
        for endpoint in (b24, z, z2):
            await endpoint.sink.close()
    finally:
        await store.close()
    config = load_config(str(tmp_path / "t.ini"), (PlatformSettings, DispatcherSettings), env={})
    shown = str(config.redacted())
    assert "s3cret-value" not in shown and "cti-t0ken-value" not in shown
    assert {"s3cret-value", "cti-t0ken-value"} <= set(config.secrets())
