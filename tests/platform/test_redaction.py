"""Every place that shows a URL shows it redacted, and what a configuration leaves open is said.

`tcxhooks check` prints endpoint URLs with their password and query values as ***, and scrubs every
secret of the config from what it prints; it fails services open without a token and warns about an
unchecked or plaintext PBX and unsigned or plaintext endpoints, which each service also logs at start.
Log lines show any URL in them redacted (a library's message may carry one with a token or signature).
(`tcxhooks endpoints` and the dispatcher's answers: tests/dispatcher/test_cli.py.)
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tcxhooks.platform.logging import setup_logging
from tests.fakes.receiver import Receiver
from tests.helpers.net import free_port
from tests.helpers.services import running, wait_until, write_config

PASSWORD, TOKEN = "s3cret-pass", "s3cret-token-value"


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcxhooks", "check", "-c", str(config)], capture_output=True, text=True, timeout=120
    )


def test_check_shows_urls_redacted_and_says_what_is_left_open(tmp_path: Path) -> None:
    with Receiver() as crm:
        secret_url = crm.url.replace("http://", f"http://bot:{PASSWORD}@") + f"?token={TOKEN}&format=json"
        config = write_config(
            tmp_path,
            pbx={
                "url": f"http://127.0.0.1:{free_port()}",
                "client_id": "c",
                "client_secret": "s",
                "verify_tls": "false",
            },
            webhook={"url": secret_url},
            services={"dispatcher": "dispatcher.internal:50052"},
        )
        result = check(config)
    out = result.stdout
    assert PASSWORD not in out and TOKEN not in out
    assert f"bot:***@127.0.0.1:{crm.url.split(':')[2].split('/')[0]}" in out and "?token=***&format=***" in out
    lines = out.splitlines()
    token = next(line for line in lines if line.startswith("services token"))
    assert "FAIL" in token and "dispatcher = dispatcher.internal:50052" in token
    warned = [line for line in lines if line.startswith("exposure")]
    assert len(warned) == 4 and all(" warn " in line for line in warned)
    assert any("verify_tls = false" in line for line in warned)
    assert any("[pbx] url" in line and "plain http" in line for line in warned)
    assert any("[webhook] has no secret" in line for line in warned)
    assert any("[webhook] url is plain http" in line for line in warned)
    assert result.returncode == 1


def test_each_service_logs_what_is_left_open_when_it_starts(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        pbx={"url": f"http://127.0.0.1:{free_port()}", "client_id": "c", "client_secret": "s", "verify_tls": "false"},
        webhook={"url": f"http://127.0.0.1:{free_port()}/crm"},
    )
    for name in ("monitor", "dispatcher"):
        log_path = tmp_path / f"{name}.log"
        with running([name, "-c", str(config)], log_path):
            wait_until(
                lambda log=log_path: " starting; config" in log.read_text(errors="replace"), 30, f"{name} to start"
            )
            wait_until(lambda log=log_path: "plain http" in log.read_text(errors="replace"), 30, f"{name}'s warnings")
    monitor, dispatcher = ((tmp_path / f"{name}.log").read_text() for name in ("monitor", "dispatcher"))
    assert "WARNING" in monitor and "[pbx] verify_tls = false" in monitor and "[pbx] url" in monitor
    assert "[webhook] has no secret" in dispatcher and "[webhook] url is plain http" in dispatcher
    assert "verify_tls" not in dispatcher  # each service says what is its own


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_show_every_url_redacted(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    setup_logging("info", fmt, ["configured-secret"], "test")
    log = logging.getLogger("tcxhooks.test")
    log.warning(
        "request failed: Cannot connect to host for url 'https://bot:%s@crm.example.com/hook?token=%s'", PASSWORD, TOKEN
    )
    log.info("fetching https://bucket.s3.example.com/r/1.mp3?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA0 (S3)")
    try:
        raise ConnectionError(f"postgresql://tcxhooks:{PASSWORD}@db.example.com/tcxhooks refused configured-secret")
    except ConnectionError:
        log.exception("store down")
    text = stream.getvalue()
    if fmt == "json":
        text = "\n".join(json.dumps(json.loads(line)) for line in text.splitlines())
    assert PASSWORD not in text and TOKEN not in text and "abcdef" not in text and "AKIA0" not in text
    assert "configured-secret" not in text
    assert "https://bot:***@crm.example.com/hook?token=***" in text
    assert "X-Amz-Signature=***&X-Amz-Credential=***" in text and "postgresql://tcxhooks:***@db.example.com" in text
    logging.getLogger().handlers.clear()
