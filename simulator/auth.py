"""OAuth2 client-credentials tokens as 3CX V20 issues them: a signed JWT, one live token per client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class _Live:
    token: str
    expires: float  # unix seconds


class Tokens:
    """Mints and checks bearer tokens. Minting a new token for a client invalidates its previous one."""

    def __init__(self, client_id: str, client_secret: str, ttl: float = 60.0, issuer: str = "sim.3cx.local") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl
        self.issuer = issuer
        self._key = secrets.token_bytes(32)
        self._live: dict[str, _Live] = {}
        self.minted = 0

    def check_credentials(self, client_id: str, client_secret: str) -> bool:
        return hmac.compare_digest(client_id.encode(), self.client_id.encode()) and hmac.compare_digest(
            client_secret.encode(), self.client_secret.encode()
        )

    def mint(self, client_id: str) -> tuple[str, int]:
        """A fresh access token and its lifetime in whole seconds (what `expires_in` says)."""
        now = time.time()
        expires = now + self.ttl
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "sub": client_id,
            "scope": ["callcontrol", "xapi"],
            "aud": "/api",
            "iss": self.issuer,
            "role": ["App", "Reports", "system_owners", "CallFlowApp"],
            "iat": int(now),
            "nbf": int(now),
            "exp": int(expires) if self.ttl >= 1 else expires,
            "jti": secrets.token_hex(8),
        }
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        token = signing_input + "." + _b64(signature)
        self._live[client_id] = _Live(token, expires)
        self.minted += 1
        return token, max(0, int(self.ttl))

    def valid(self, authorization: str | None) -> bool:
        """True for `Bearer <the client's live, unexpired token>`."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization[len("Bearer ") :].strip()
        live = self._live.get(self.client_id)
        return live is not None and hmac.compare_digest(live.token, token) and time.time() < live.expires

    def expire_all(self) -> int:
        """Makes every live token expired now (control API); returns how many there were."""
        count = len(self._live)
        for live in self._live.values():
            live.expires = 0.0
        return count
