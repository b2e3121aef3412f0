"""`tcxhooks sim` as a real process: prints its URL and credentials, serves, plays, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.helpers.net import free_port


def _request(url: str, data: dict[str, str] | None = None, token: str = "") -> object:
    body = urllib.parse.urlencode(data).encode() if data else None
    request = urllib.request.Request(url, data=body, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def test_sim_command(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tcxhooks",
            "sim",
            "--port",
            str(port),
            "--client-id",
            "cli",
            "--client-secret",
            "s3cr3t",
            "--recordings-dir",
            str(tmp_path),
            "--scenario",
            "caller_hangs_up_ringing",
            "--first-call",
            "5000",
            "--token-ttl",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(6)]
        assert banner[0].strip() == f"3CX V20 simulator at http://127.0.0.1:{port}"
        assert banner[2].split() == ["client", "secret:", "s3cr3t"]
        assert banner[5].strip() == "playing caller_hangs_up_ringing as call 5000"
        token = _request(
            f"http://127.0.0.1:{port}/connect/token",
            {"grant_type": "client_credentials", "client_id": "cli", "client_secret": "s3cr3t"},
        )
        assert isinstance(token, dict) and token["expires_in"] == 60
        deadline = time.monotonic() + 10
        calls: object = None
        while time.monotonic() < deadline:
            calls = _request(f"http://127.0.0.1:{port}/sim/calls")
            if isinstance(calls, dict) and calls["calls"]:
                break
            time.sleep(0.1)
        assert isinstance(calls, dict) and calls["calls"][0]["call_number"] == 5000
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


def test_bad_arguments_exit_2() -> None:
    for args in (["--repeat", "5"], ["--port", "0"], ["--scenario", "nope"], ["--token-ttl", "0"]):
        result = subprocess.run(
            [sys.executable, "-m", "tcxhooks", "sim", *args], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2, args
