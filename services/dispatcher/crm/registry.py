"""From `[crm:NAME]` sections to running adapters: each `type`'s settings read from the section's keys.

    sinks = [build_sink(crm, deps) for crm in settings.crms]

`rate` and `burst` of 0 keep the CRM's own documented budget (each adapter's settings default).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from ..config import CrmConfig
from .amocrm import AmoOptions, AmoSettings, AmoSink
from .bitrix24 import Bitrix24Settings, Bitrix24Sink
from .sink import CrmSink, SinkDeps
from .zammad import ZammadOptions, ZammadSettings, ZammadSink
from .zammad.settings import RETRY_SCHEDULE as ZAMMAD_RETRY_SCHEDULE

T = TypeVar("T")


def build_sink(config: CrmConfig, deps: SinkDeps) -> CrmSink:
    if config.type == "bitrix24":
        return Bitrix24Sink(_budget(Bitrix24Settings.from_config(config), config), deps)
    if config.type == "amocrm":
        return AmoSink(_budget(amocrm_settings(config), config), deps)
    return ZammadSink(_budget(zammad_settings(config), config), deps)


def _budget(settings: T, config: CrmConfig) -> T:
    """The adapter's settings with the section's rate and burst where they are set."""
    changes: dict[str, Any] = {}
    if config.rate:
        changes["rate"] = config.rate
    if config.burst:
        changes["burst"] = config.burst
    return replace(settings, **changes)  # type: ignore[type-var]


def _http(config: CrmConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "stale_after": config.stale_after,
        "timeout": config.timeout,
        "connect_timeout": config.connect_timeout,
        "ca_file": config.ca_file,
        "concurrency": config.concurrency,
    }


def amocrm_settings(config: CrmConfig) -> AmoSettings:
    options = AmoOptions(
        user_map={ext: int(user) for ext, user in config.users_by_extension.items()},
        default_user=config.default_user,
        source=config.source,
        notify=config.notify,
        unsorted=config.unsorted,
        pipeline_id=config.pipeline_id,
        missed_task=config.missed_task,
        missed_task_delay=config.missed_task_delay,
        transcript=config.transcript,
        summary=config.summary,
        recording_wait=config.recording_wait,
        links=config.recording != "none",
        language=config.language,
    )
    return AmoSettings(
        url=config.url,
        token=config.token,
        client_id=config.client_id,
        client_secret=config.client_secret,
        redirect_uri=config.redirect_uri,
        auth_code=config.auth_code,
        refresh_token=config.refresh_token,
        options=options,
        **_http(config),
    )


def zammad_settings(config: CrmConfig) -> ZammadSettings:
    settings = ZammadSettings(
        url=f"{config.url}/api/v1/cti/{config.token}",
        options=ZammadOptions(user_map=config.users_by_extension),
        **_http(config),
    )
    return replace(settings, retry_schedule=config.retry_schedule) if config.retry_schedule else settings


def retry_schedule(config: CrmConfig) -> tuple[float, ...]:
    """The section's own schedule; Zammad's short one when unset; () for the dispatcher's."""
    if config.retry_schedule:
        return config.retry_schedule
    return ZAMMAD_RETRY_SCHEDULE if config.type == "zammad" else ()
