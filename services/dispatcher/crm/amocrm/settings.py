"""The settings of one amoCRM / Kommo adapter, as its [crm:NAME] section gives them (docs/crm.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import AdapterSettings
from .auth import OAuthApp
from .requests import AmoOptions


@dataclass(frozen=True)
class AmoSettings(AdapterSettings):
    # amoCRM allows 7 requests a second: a bucket of 1 refilled 6 a second never sends more in any second
    rate: float = 6.0
    burst: int = 1
    url: str = ""  # the account: https://SUBDOMAIN.amocrm.ru or https://SUBDOMAIN.kommo.com
    token: str = ""  # a long-lived token (private integration, Keys and scopes)
    client_id: str = ""  # or OAuth: the integration's keys, its redirect URI, and a code or refresh token
    client_secret: str = ""
    redirect_uri: str = ""
    auth_code: str = ""
    refresh_token: str = ""
    options: AmoOptions = field(default_factory=AmoOptions)

    @property
    def oauth(self) -> OAuthApp | None:
        if self.token:
            return None
        return OAuthApp(self.client_id, self.client_secret, self.redirect_uri, self.auth_code, self.refresh_token)

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.client_secret, self.auth_code, self.refresh_token) if s]
