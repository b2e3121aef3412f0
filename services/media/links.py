"""Stable download links on media's own HTTP server, signed with HMAC and expiring at retention end.

    links = Links([key, previous_key], "https://media.example.com")
    url = links.url("251125184500_698-1", 1, expires=1780000000)
    links.check(call_id, idx, exp_text, sig_text)   # → "ok" / "tampered" / "expired"

The same leg, file and expiry always give the same URL, so a webhook resent later carries the
same link. The signature covers call id, file number and expiry, so none of them can be changed.
New links are signed with the first key; a link signed with any of the keys is valid, so a key can
be rotated without breaking the links already sent: the old key stays accepted until the last
link signed with it expires (`retention_days` after the rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from urllib.parse import quote

PATH_PREFIX = "/r"


class Links:
    def __init__(self, keys: Sequence[bytes], public_url: str) -> None:
        if not keys or not all(keys):
            raise ValueError("empty link key")
        self._keys = list(dict.fromkeys(keys))
        self.public_url = public_url.rstrip("/")

    def signature(self, call_id: str, idx: int, expires: int, key: bytes | None = None) -> str:
        message = f"v1\n{call_id}\n{idx}\n{expires}".encode()
        return hmac.new(key or self._keys[0], message, hashlib.sha256).hexdigest()[:40]

    def path(self, call_id: str, idx: int) -> str:
        return f"{PATH_PREFIX}/{quote(call_id, safe='')}/{idx}.mp3"

    def url(self, call_id: str, idx: int, expires: int) -> str:
        sig = self.signature(call_id, idx, expires)
        return f"{self.public_url}{self.path(call_id, idx)}?exp={expires}&sig={sig}"

    def check(self, call_id: str, idx: int, exp_text: str, sig_text: str, now: float | None = None) -> str:
        """ "ok", "tampered" (any part changed or missing) or "expired" (valid but past its end)."""
        if not (exp_text.isascii() and exp_text.isdigit()) or len(exp_text) > 12 or not sig_text.isascii():
            return "tampered"
        expires = int(exp_text)
        if not any(hmac.compare_digest(self.signature(call_id, idx, expires, key), sig_text) for key in self._keys):
            return "tampered"
        return "expired" if (time.time() if now is None else now) >= expires else "ok"
