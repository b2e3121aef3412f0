"""amoCRM credentials: a long-lived token, or OAuth 2.0 tokens kept in the store and refreshed.

    auth = AmoAuth("amo", legs, api, "https://example.amocrm.ru", token="…")          # long-lived
    auth = AmoAuth("amo", legs, api, url, oauth=OAuthApp(client_id, secret, redirect_uri, code_or_refresh))
    headers = await auth.headers()      # {"authorization": "Bearer …"}
    await auth.refresh()                # after a 401: new tokens (amoCRM rotates the refresh token)

amoCRM voids a refresh token once it is used, so the new pair is stored before it is used and one
refresh runs at a time. The configured authorization code (valid 20 minutes, once) or refresh token
only starts the chain: afterwards the stored tokens win.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from ..client import JsonApi
from ..errors import CrmError
from ..legstate import LegStore

EARLY = 300.0  # refresh this long before the access token expires
FIX = (
    "give the integration access again (amoCRM: Settings → Integrations → your integration → Keys) and put "
    "a new authorization code in [crm] auth_code, or use a long-lived token ([crm] token)"
)


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    client_secret: str
    redirect_uri: str
    auth_code: str = ""  # from the integration's install (20 minutes, once)
    refresh_token: str = ""


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str
    expires_at: float


class AmoAuth:
    def __init__(
        self, crm: str, legs: LegStore, api: JsonApi, base_url: str, *, token: str = "", oauth: OAuthApp | None = None
    ) -> None:
        if not token and oauth is None:
            raise ValueError("amoCRM needs a long-lived token or an OAuth integration")
        self.crm, self.legs, self.api, self.base_url = crm, legs, api, base_url
        self.token = token
        self.oauth = oauth
        self._tokens: Tokens | None = None
        self._lock = asyncio.Lock()

    @property
    def refreshable(self) -> bool:
        return not self.token

    async def headers(self) -> dict[str, str]:
        if self.token:
            return {"authorization": f"Bearer {self.token}"}
        tokens = self._tokens or await self._stored()
        if tokens is None or tokens.expires_at - EARLY < time.time():
            tokens = await self.refresh(tokens)
        return {"authorization": f"Bearer {tokens.access}"}

    async def _stored(self) -> Tokens | None:
        raw = await self.legs.value(self.crm, "oauth")
        if raw is None:
            return None
        data = json.loads(raw)
        self._tokens = Tokens(str(data["access"]), str(data["refresh"]), float(data["expires_at"]))
        return self._tokens

    async def refresh(self, stale: Tokens | None = None) -> Tokens:
        """New tokens, unless another request refreshed them while this one waited."""
        assert self.oauth is not None
        async with self._lock:
            current = self._tokens or await self._stored()
            if current is not None and current != stale and current.expires_at - EARLY > time.time():
                return current
            app = self.oauth
            grant: dict[str, str] = {
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "redirect_uri": app.redirect_uri,
            }
            if current is not None:
                grant.update(grant_type="refresh_token", refresh_token=current.refresh)
            elif app.refresh_token:
                grant.update(grant_type="refresh_token", refresh_token=app.refresh_token)
            elif app.auth_code:
                grant.update(grant_type="authorization_code", code=app.auth_code)
            else:
                raise CrmError("amoCRM OAuth: no authorization code or refresh token", verdict="gone", code="auth")
            answer = await self.api.send(
                "POST", f"{self.base_url}/oauth2/access_token", what="amo token refresh", json_body=grant
            )
            body = answer.body if isinstance(answer.body, dict) else {}
            if answer.status != 200 or not body.get("access_token") or not body.get("refresh_token"):
                if answer.status >= 500 or answer.status == 429:
                    raise CrmError(f"amo token refresh: HTTP {answer.status}", status=answer.status, code="auth")
                hint = str(body.get("hint") or body.get("detail") or "")
                raise CrmError(
                    f"amo token refresh refused: HTTP {answer.status} {hint}".rstrip(),
                    verdict="gone",
                    status=answer.status,
                    code="auth",
                    description=FIX,
                )
            tokens = Tokens(
                str(body["access_token"]),
                str(body["refresh_token"]),
                time.time() + float(body.get("expires_in") or 86400),
            )
            await self.legs.set_value(
                self.crm,
                "oauth",
                json.dumps({"access": tokens.access, "refresh": tokens.refresh, "expires_at": tokens.expires_at}),
            )
            self._tokens = tokens
            return tokens
