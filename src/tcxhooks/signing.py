"""Signatures of tcxhooks webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
`webhook-signature`): the dispatcher signs with this module, a receiver verifies with it.

    from tcxhooks.signing import SignatureError, verify

    try:
        verify("whsec_MfKQ9r8G...", request.headers, request.body)    # the raw body bytes, as received
    except SignatureError as exc:
        ...  # answer 401: not from us, altered, or too old / too new (a replay)

Works for both formats (`form` and `json`): the HMAC covers the body's bytes, which are never
parsed here. The HMAC-SHA256 covers `"{id}.{timestamp}.{body}"` with the base64-decoded part of
the secret after `whsec_`. During a rotation the dispatcher signs with every secret (space
separated signatures); `verify` takes one secret or several and accepts a request signed by any.
A timestamp more than `tolerance` seconds (5 minutes) from now, in the past or the future, is
refused: a recorded request cannot be replayed later. Only the standard library is used, so the
module is importable with the base install and easy to copy. See docs/webhooks.md §8.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_TOLERANCE", "SignatureError", "Signer", "sign", "verify"]

PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """The request's signature, id or timestamp does not check out."""


def _mac(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with the secret, fed nothing yet: copied for each signature."""
    key = base64.b64decode(secret[len(PREFIX) :] if secret.startswith(PREFIX) else secret)
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


def verify(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Checks a received webhook; raises SignatureError unless a signature matches a secret and the
    timestamp is within `tolerance` seconds of `now`. `headers`: any mapping, names in any case."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, given = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not (msg_id and stamp and given):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise SignatureError("webhook-timestamp too old (a replayed or long-delayed request)")
    if timestamp > current + tolerance:
        raise SignatureError("webhook-timestamp too far in the future")
    offered = [part.split(",", 1)[1] for part in given.split() if part.startswith("v1,")]
    for one in secrets:
        expected = _signature(_mac(one), msg_id, timestamp, raw)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise SignatureError("no matching signature")
