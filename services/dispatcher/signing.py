"""Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`).

    header = sign(("whsec_MfKQ9r8G...",), "msg_42", 1764096300, body)   # "v1,<base64>"
    verify(("whsec_MfKQ9r8G...",), headers, body)                      # raises SignatureError

The HMAC-SHA256 covers `"{id}.{timestamp}.{body}"` with the base64-decoded part of the secret after
`whsec_`. Several secrets (rotation) give several space-separated signatures; `verify` accepts a
request signed by any of them. A CRM-side adapter can reuse `verify`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Mapping, Sequence

PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """The request's signature, id or timestamp does not check out."""


def _mac(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with the secret, fed nothing yet: copied for each signature."""
    key = base64.b64decode(secret[len(PREFIX):] if secret.startswith(PREFIX) else secret)
    return hmac.new(key, digestmod=hashlib.sha256)


def _signature(keyed: hmac.HMAC, msg_id: str, timestamp: int, body: bytes) -> str:
    # A copy of a keyed HMAC, not hmac.digest(): cheaper, and the one-shot call gives up the GIL on
    # every webhook, which the event loop then has to wait to take back from busy threads.
    mac = keyed.copy()
    mac.update(f"{msg_id}.{timestamp}.".encode() + body)
    return base64.b64encode(mac.digest()).decode()


class Signer:
    """Signs with pre-keyed HMACs (an endpoint's secrets decoded once)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._macs = [_mac(s) for s in secrets]

    def __bool__(self) -> bool:
        return bool(self._macs)

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        return " ".join(f"v1,{_signature(mac, msg_id, timestamp, body)}" for mac in self._macs)


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for these secrets."""
    return Signer(secrets).sign(msg_id, timestamp, body)


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes,
           tolerance: int = DEFAULT_TOLERANCE, now: float | None = None) -> None:
    """Checks a received webhook; raises SignatureError unless one signature matches one secret."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not (msg_id and stamp and given):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp too far from now")
    offered = [part.split(",", 1)[1] for part in given.split() if part.startswith("v1,")]
    for secret in secrets:
        expected = _signature(_mac(secret), msg_id, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise SignatureError("no matching signature")
