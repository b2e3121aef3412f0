"""`tcxhooks check` against real dependencies: the simulator, a CRM receiver, the store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.receiver import Receiver
from tests.helpers.net import free_port
from tests.helpers.services import read_config, running, start_simulator, stop, wait_healthy, write_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[str]:
    simulator = start_simulator(tmp_path, "crmhooks", "check-secret")
    try:
        simulator.wait_ready()
        yield simulator.url
    finally:
        stop(simulator.proc)


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcxhooks", "check", "-c", str(config)], capture_output=True, text=True, timeout=120
    )


def test_all_dependencies_reachable(tmp_path: Path, sim: str) -> None:
    with Receiver() as crm:
        config = write_config(
            tmp_path,
            pbx={"url": sim, "client_id": "crmhooks", "client_secret": "check-secret"},
            webhook={"url": crm.url, "secret": SECRET},
        )
        result = check(config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "pbx token" in result.stdout and "pbx callcontrol" in result.stdout
        assert "XAPI call log readable" in result.stdout  # outage recovery and the post-call check read it
        assert "webhook default" in result.stdout and "HTTP 200" in result.stdout
        ping = crm.wait_for_sync(1)[0]
        assert ping.form()["event"] == "ping"
        assert "webhook-signature" in {k.lower() for k in ping.headers}
    assert "check-secret" not in result.stdout + result.stderr
    # no [recordings] link_secret: a warning with its fix, and check still passes
    lines = result.stdout.splitlines()
    link = next(i for i, line in enumerate(lines) if line.startswith("link key"))
    assert "warn" in lines[link] and "lives only in the store" in lines[link]
    assert lines[link + 1].strip().startswith("fix: set [recordings] link_secret")
    exposed = sum(line.startswith("exposure") for line in lines)  # the simulator and the receiver speak http
    assert lines[-1].endswith(f"checks passed ({1 + exposed} warnings)") and exposed == 2


def test_a_configured_link_key_is_not_warned_about(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # the other checks fail: only the link key line matters here
    config = write_config(
        tmp_path,
        pbx={"url": closed, "client_id": "c", "client_secret": "s"},
        webhook={"url": closed},
        recordings={"link_secret": "new-link-key", "link_secret_previous": "old-link-key"},
    )
    result = check(config)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("link key")]
    assert " ok  " in line and "link_secret_previous" in line
    assert "new-link-key" not in result.stdout and "old-link-key" not in result.stdout


def test_failures_are_named_with_a_fix(tmp_path: Path, sim: str) -> None:
    with Receiver() as crm:
        crm.respond(500)
        config = write_config(
            tmp_path,
            pbx={"url": sim, "client_id": "crmhooks", "client_secret": "wrong-secret"},
            webhook={"url": crm.url},
        )
        result = check(config)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    token = next(i for i, line in enumerate(lines) if line.startswith("pbx token"))
    assert "FAIL" in lines[token] and lines[token + 1].strip().startswith("fix: check [pbx] url, client_id")
    assert any(line.startswith("webhook default") and "FAIL" in line and "500" in line for line in lines)
    assert "wrong-secret" not in result.stdout + result.stderr


def test_running_services_are_asked_over_grpc(tmp_path: Path, sim: str) -> None:
    """With the monitor running, check must not mint a second PBX token: it asks the monitor."""
    with Receiver() as crm:
        config = write_config(
            tmp_path,
            pbx={"url": sim, "client_id": "crmhooks", "client_secret": "check-secret"},
            webhook={"url": crm.url, "queues": "800", "users": "101,102"},
        )
        services = read_config(config)["services"]
        with running(["up", "-c", str(config), "--only", "monitor,dispatcher"], tmp_path / "up.log"):
            wait_healthy(services["monitor"], 60)
            wait_healthy(services["dispatcher"], 60)
            result = check(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(asked the running monitor)" in result.stdout
    assert "(sent by the running dispatcher)" in result.stdout
    assert any(
        line.startswith("pbx calllog") and "asked the running monitor" in line for line in result.stdout.splitlines()
    )
    assert any(
        line.startswith("filters default")
        and "ok" in line
        and "queues 800, extensions 101, 102 exist (as the running monitor polled it)" in line
        for line in result.stdout.splitlines()
    ), result.stdout


def test_a_call_log_without_system_owner_rights_is_named(tmp_path: Path, sim: str) -> None:
    httpx.post(
        f"{sim}/sim/fail", json={"prefix": "/xapi/v1/ReportCallLogData", "status": 403, "count": 100}, timeout=5
    ).raise_for_status()
    pbx = {"url": sim, "client_id": "crmhooks", "client_secret": "check-secret"}
    with Receiver() as crm:
        result = check(write_config(tmp_path, pbx=pbx, webhook={"url": crm.url}))
        lines = result.stdout.splitlines()
        line = next(i for i, text in enumerate(lines) if text.startswith("pbx calllog"))
        assert result.returncode == 1 and "FAIL" in lines[line] and "403" in lines[line]
        assert "System Owner" in lines[line + 1] and "recover_outages = false" in lines[line + 1]
        off = check(
            write_config(
                tmp_path, pbx={**pbx, "reconcile": "false", "recover_outages": "false"}, webhook={"url": crm.url}
            )
        )
    assert off.returncode == 0 and "pbx calllog" not in off.stdout, off.stdout


def test_bad_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.ini"
    path.write_text("[webhook]\nurl = not-a-url\n")
    result = check(path)
    assert result.returncode == 2
    assert "[webhook] url = 'not-a-url': expected an http:// or https:// URL" in result.stdout


def test_yandex_iam_token_file_is_read_and_a_missing_one_named(tmp_path: Path) -> None:
    from tests.fakes.yandex import FakeYandex

    token_file = tmp_path / "iam-token"
    with FakeYandex(iam_token="t1.check-iam-token-0123456789") as fake:
        analytics = {
            "enabled": "true",
            "backend": "yandex",
            "api_key": "",
            "iam_token_file": str(token_file),
            "folder_id": fake.folder_id,
            "operation_url": fake.url,
        }
        # the PBX and the CRM are not there: only the yandex line matters here
        config = write_config(
            tmp_path,
            analytics=analytics,
            webhook={"url": f"http://127.0.0.1:{free_port()}/hook"},
            pbx={"url": f"http://127.0.0.1:{free_port()}", "client_id": "crmhooks", "client_secret": "check-secret"},
        )
        missing = check(config)
        token_file.write_text("t1.check-iam-token-0123456789\n")
        accepted = check(config)
        token_file.write_text("t1.another-token-000000000\n")
        refused = check(config)
    line = {
        name: next(line for line in result.stdout.splitlines() if line.startswith("yandex"))
        for name, result in (("missing", missing), ("accepted", accepted), ("refused", refused))
    }
    assert "FAIL" in line["missing"] and "cannot read [analytics] iam_token_file" in line["missing"]
    assert "FAIL" not in line["accepted"] and "credentials accepted" in line["accepted"]
    assert "FAIL" in line["refused"] and "credentials refused (HTTP 401)" in line["refused"]
    assert "check-iam-token" not in accepted.stdout + accepted.stderr


def test_queue_and_user_filters_are_checked_against_the_pbx_directory(tmp_path: Path, sim: str) -> None:
    with Receiver() as crm:
        config = write_config(
            tmp_path,
            pbx={"url": sim, "client_id": "crmhooks", "client_secret": "check-secret"},
            webhook={"url": crm.url, "queues": "800"},
            **{"webhook:typo": {"url": crm.url, "queues": "800, 899", "users": "101, 199"}},
        )
        result = check(config)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("filters default") and " ok " in line and "queues 800 exist (read by check)" in line
        for line in lines
    ), result.stdout
    typo = next(i for i, line in enumerate(lines) if line.startswith("filters typo"))
    assert "FAIL" in lines[typo] and "[webhook:typo] queue 899, extension 199 not in the PBX directory" in lines[typo]
    assert "fix: set [webhook:typo] queues / users" in lines[typo + 1]
