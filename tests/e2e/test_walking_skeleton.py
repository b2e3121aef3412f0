"""Scenario 1 of docs/webhooks.md §6 end to end: simulator → monitor → dispatcher → CRM, plus the mp3.

Inbound call via DID 74951234567 (rule "Main line") to 101, answered, the caller hangs up.
"""

from __future__ import annotations

import re
import subprocess
import time
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import imageio_ffmpeg
from standardwebhooks.webhooks import Webhook

from tests.helpers.contract import legacy

from .conftest import WEBHOOK_SECRET, Stack

CALLER = "79161234567"
DID = "74951234567"
TALK_SECONDS = 3


def mp3_duration(data: bytes) -> float:
    """Decodes the whole file with ffmpeg and returns the decoded duration (fails on a broken mp3)."""
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "mp3",
            "-i",
            "pipe:0",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "8000",
            "pipe:1",
        ],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr.decode()
    return len(result.stdout) / 2 / 8000


def test_inbound_answered_call_end_to_end(stack: Stack) -> None:
    started = time.time()
    played = stack.play("inbound_answered", talk_seconds=TALK_SECONDS)
    # exactly four: a duplicate (a second recording, a repeated ended call) would come within the grace
    hooks = stack.crm.wait_exactly_sync(4, timeout=60, grace=5)
    events = [h.form()["event"] for h in hooks]
    assert events == ["ringing", "hangupincoming", "incoming", "recording"], stack.logs()

    # The call id: <yyMMddHHmmss>_<3CX call number>-<link>, date-time when the call reached the monitor.
    prefix = hooks[0].form()["id"].rsplit("-", 1)[0]
    stamp, number = prefix.split("_")
    assert number == str(played["call_number"])
    assert re.fullmatch(r"\d{12}", stamp)
    seen = time.mktime(time.strptime(stamp, "%y%m%d%H%M%S"))
    assert started - 2 <= seen <= started + 10

    ringing, answered, ended, recording = (h.form_items() for h in hooks)
    ringing, answered = legacy(ringing), legacy(answered)
    assert ringing == [
        ("event", "ringing"),
        ("callerid", CALLER),
        ("did", DID),
        ("user", "101"),
        ("usertype", "ext"),
        ("id", f"{prefix}-0"),
    ]
    assert answered == [
        ("event", "hangupincoming"),
        ("callerid", CALLER),
        ("user", "101"),
        ("did", DID),
        ("trtype", "NotDef"),
        ("id", f"{prefix}-1"),
    ]
    ended_fields = dict(ended)
    assert [k for k, _ in ended][:8] == ["event", "callerid", "user", "did", "finishtype", "transfer", "title", "id"]
    assert ended_fields["event"] == "incoming"
    assert (ended_fields["callerid"], ended_fields["user"], ended_fields["did"]) == (CALLER, "101", DID)
    assert (ended_fields["finishtype"], ended_fields["transfer"], ended_fields["id"]) == ("Ok", "false", f"{prefix}-1")
    assert abs(int(ended_fields["duration"]) - TALK_SECONDS) <= 1
    assert ended_fields["didname"] == "Main line"
    assert "Main line" in ended_fields["title"]
    assert f"0:00:{int(ended_fields['duration']):02d}" in ended_fields["title"]

    # Headers: Standard Webhooks signature (verified by the reference package), sequence per call.
    verifier = Webhook(WEBHOOK_SECRET)
    for number, hook in enumerate(hooks, start=1):
        assert hook.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
        assert hook.headers["User-Agent"].startswith("tcxhooks/")
        assert hook.headers["x-tcxhooks-sequence"] == str(number)
        verifier.verify(hook.body, {k.lower(): v for k, v in hook.headers.items()}, json_parse=False)
    assert len({h.headers["webhook-id"] for h in hooks}) == 4

    # The recording: one mp3 link of the right duration; a tampered link is refused.
    assert dict(recording)["id"] == f"{prefix}-1"
    links = [v for k, v in recording if k == "links[]"]
    assert len(links) == 1
    reply = httpx.get(links[0], follow_redirects=True, timeout=30)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("audio/mpeg")
    assert abs(mp3_duration(reply.content) - TALK_SECONDS) < 0.6
    parts = urlsplit(links[0])
    query = dict(parse_qsl(parts.query))
    signature_key = next(k for k in query if k in ("sig", "signature", "s"))
    query[signature_key] = ("0" if query[signature_key][0] != "0" else "1") + query[signature_key][1:]
    tampered = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))
    assert httpx.get(tampered, timeout=10).status_code == 403

    # Latency (reported in the closing note, not asserted): simulator event → webhook received.
    print(f"\nwebhook arrival after play: {[round(h.received - started, 3) for h in hooks]}")
