"""The settings of one Bitrix24 adapter, as its [crm:NAME] section gives them (docs/crm.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from ...config import CrmConfig
from ..settings import AdapterSettings
from .mapping import Options

OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"


@dataclass(frozen=True)
class Bitrix24Settings(AdapterSettings):
    rate: float = 2.0  # 5 on Enterprise plans
    burst: int = 50  # 250 on Enterprise plans
    url: str = ""  # the portal, e.g. https://company.bitrix24.ru (OAuth mode: tokens must be for it)
    client_id: str = ""  # the local application's keys (OAuth mode)
    client_secret: str = ""
    oauth_url: str = OAUTH_URL
    webhook_url: str = ""  # https://company.bitrix24.ru/rest/1/<code>/ (fallback mode)
    event_token: str = ""  # webhook mode: the outgoing webhook's token for click-to-call events
    default_user: int = 0
    user_map: dict[str, int] = field(default_factory=dict)  # extension → user id, over UF_PHONE_INNER
    users_refresh: float = 600.0
    line: str = ""  # one LINE_NUMBER for every call ("": the call's DID, added as a line when new)
    click_to_call: bool = False
    click_window: float = 120.0  # how long a click waits for its call to show up
    options: Options = field(default_factory=Options)

    @property
    def webhook_mode(self) -> bool:
        return bool(self.webhook_url)

    @property
    def portal_host(self) -> str:
        """The portal's host name (from `url`, else from `webhook_url`)."""
        return (urlsplit(self.url or self.webhook_url).hostname or "").lower()

    @property
    def rest_url(self) -> str:
        """Where REST methods are called: `<webhook_url>` or `<url>/rest/`."""
        if self.webhook_mode:
            return self.webhook_url if self.webhook_url.endswith("/") else self.webhook_url + "/"
        return self.url.rstrip("/") + "/rest/"

    @classmethod
    def from_config(cls, crm: CrmConfig) -> Bitrix24Settings:
        options = Options(
            crm_create=crm.crm_create,
            add_to_chat=crm.add_to_chat,
            missed_task=crm.missed_task,
            missed_task_delay=crm.missed_task_delay,
            recording=crm.recording,
            transcript=crm.transcript,
            summary=crm.summary,
            language=crm.language,
            timezone=ZoneInfo(crm.timezone) if crm.timezone else None,
        )
        return cls(
            name=crm.name,
            url=crm.url,
            client_id=crm.client_id,
            client_secret=crm.client_secret,
            oauth_url=crm.oauth_url,
            webhook_url=crm.webhook_url,
            event_token=crm.event_token,
            stale_after=crm.stale_after,
            default_user=crm.default_user,
            user_map={ext: int(user) for ext, user in crm.users_by_extension.items()},
            users_refresh=crm.users_refresh,
            line=crm.line,
            click_to_call=crm.click_to_call,
            timeout=crm.timeout,
            connect_timeout=crm.connect_timeout,
            ca_file=crm.ca_file,
            concurrency=crm.concurrency,
            options=options,
        )

    @property
    def target(self) -> str:
        """The portal as operators may see it: its REST address, a webhook's code masked."""
        if not self.webhook_mode:
            return self.rest_url
        parts = urlsplit(self.webhook_url)
        return f"{parts.scheme}://{parts.netloc}/rest/…/***/"

    def secrets(self) -> list[str]:
        """Values never to show: the client secret, the event token, the webhook URL's code."""
        code = urlsplit(self.webhook_url).path.rstrip("/").rsplit("/", 1)[-1] if self.webhook_url else ""
        return [s for s in (self.client_secret, self.event_token, code) if s]
