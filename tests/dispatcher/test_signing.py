"""tcxhooks.signing: what a receiver verifies with, and what the dispatcher signs with."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import subprocess
import sys

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tcxhooks.signing import SignatureError, sign, verify

from .conftest import SECRET, SECRET2

FORM = b"event=ringing&callerid=79161234567&did=74951234567&user=101&usertype=ext&id=251125184500_698-0"
JSON = b'{"type":"call.ringing","timestamp":"2025-11-25T18:45:00+03:00","data":{"id":"251125184500_698-0"}}'
NOW = 1764085500


def _headers(body: bytes, timestamp: int = NOW, secrets: tuple[str, ...] = (SECRET,)) -> dict[str, str]:
    return {
        "Webhook-Id": "msg_0192f3a0c1d27e3a9b1c2d3e4f5a6b7c",
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secrets, "msg_0192f3a0c1d27e3a9b1c2d3e4f5a6b7c", timestamp, body),
    }


def test_signing_matches_the_reference_package() -> None:
    stamp = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    theirs = [Webhook(s).sign("msg_42", stamp, FORM.decode()) for s in (SECRET, SECRET2)]
    assert sign([SECRET, SECRET2], "msg_42", NOW, FORM) == " ".join(theirs)


@pytest.mark.parametrize("key_bytes", [1, 24, 63, 64, 65, 100])
def test_signing_is_hmac_sha256_for_keys_of_any_length(key_bytes: int) -> None:
    """Keys shorter and longer than SHA-256's 64-byte block (a longer one is hashed first), bodies
    empty and larger than the block and the GIL threshold of hashlib."""
    key = bytes(range(7, 7 + key_bytes))
    secret = "whsec_" + base64.b64encode(key).decode()
    for body in (b"", FORM, FORM * 40):
        expected = hmac.new(key, b"msg_42.%d." % NOW + body, hashlib.sha256).digest()
        assert sign([secret], "msg_42", NOW, body) == "v1," + base64.b64encode(expected).decode()


@pytest.mark.parametrize("body", [FORM, JSON], ids=["form", "json"])
def test_both_formats_verify_from_their_raw_bytes(body: bytes) -> None:
    verify(SECRET, _headers(body), body, now=NOW)
    verify([SECRET2, SECRET], _headers(body), body.decode(), now=NOW)  # several secrets, body as text
    verify(SECRET2, _headers(body, secrets=(SECRET, SECRET2)), body, now=NOW)  # signed during a rotation
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET, _headers(body), body + b" ", now=NOW)
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(SECRET2, _headers(body), body, now=NOW)
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, {"webhook-id": "msg_1"}, body, now=NOW)


def test_stale_and_future_timestamps_are_refused() -> None:
    """A signed request recorded and replayed later, or stamped ahead, is refused however good its
    signature: 5 minutes either way by default."""
    for offset in (-300, 0, 300):
        verify(SECRET, _headers(FORM, NOW + offset), FORM, now=NOW)
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, _headers(FORM, NOW - 301), FORM, now=NOW)
    with pytest.raises(SignatureError, match="future"):
        verify(SECRET, _headers(FORM, NOW + 301), FORM, now=NOW)
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, _headers(FORM, NOW - 3600), FORM)  # the real clock: an hour-old request
    verify(SECRET, _headers(FORM, NOW - 3600), FORM, tolerance=3601, now=NOW)
    with pytest.raises(SignatureError, match="not a number"):
        verify(SECRET, {**_headers(FORM), "Webhook-Timestamp": "soon"}, FORM, now=NOW)


def test_the_reference_package_verifies_form_bodies_only_without_parsing_json() -> None:
    """What docs/webhooks.md says of the Python Standard Webhooks library."""
    import time

    headers = _headers(FORM, int(time.time()))
    with pytest.raises(ValueError):  # json.loads of a form body
        Webhook(SECRET).verify(FORM, headers)
    assert Webhook(SECRET).verify(FORM, headers, json_parse=False) is None
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(FORM + b"&x=1", headers, json_parse=False)


def test_importable_with_the_standard_library_alone() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; import tcxhooks.signing; print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # "_…": the interpreter's and the installer's own hooks (__main__, an editable install's finder)
    assert [m for m in loaded if m not in sys.stdlib_module_names and m != "tcxhooks" and not m.startswith("_")] == []
