"""Nothing runs open by accident: the service token, through real service processes.

A service whose peers are reachable beyond loopback will not start without a token; an empty secret
file is an error; `tcxhooks up` makes its own token for the run; a caller without the token is refused
before its request is read (memory stays flat under 60 MB calls), counted and logged at a bounded rate.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from tcxhooks.platform.auth import RefusalLog
from tcxhooks.platform.config import load_config
from tcxhooks.platform.runtoken import run_token_path
from tcxhooks.platform.settings import PlatformSettings
from tests.helpers.net import free_port
from tests.helpers.services import read_config, running, wait_healthy, wait_until, write_config

from .served import served

TOKEN = "platform-auth-test-token"
BULK = 60 * 1024 * 1024


def tcxhooks(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcxhooks", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    "services",
    [
        {"dispatcher": "0.0.0.0:{port}"},  # the service itself listens on every interface
        {"monitor": "monitor.internal:50051"},  # a peer elsewhere: the token would go out empty
    ],
)
def test_a_service_reachable_beyond_loopback_does_not_start_without_a_token(
    tmp_path: Path, services: dict[str, str]
) -> None:
    chosen = {name: value.format(port=free_port()) for name, value in services.items()}
    config = write_config(tmp_path, services=chosen, webhook={"url": "http://127.0.0.1:9/crm"})
    done = tcxhooks("dispatcher", "-c", str(config))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "[services] token is empty" in line and next(iter(chosen.values())) in line


def test_with_a_token_it_starts_on_every_interface(tmp_path: Path) -> None:
    port = free_port()
    with served(tmp_path, "dispatcher", services={"dispatcher": f"0.0.0.0:{port}", "token": TOKEN}) as service:
        wait_healthy(f"127.0.0.1:{port}")
        assert service.raw("ListEndpoints", b"", token=TOKEN)[0] == grpc.StatusCode.OK


def test_an_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "services-token"
    empty.write_text("\n")
    config = write_config(tmp_path, webhook={"url": "http://127.0.0.1:9/crm"})
    done = tcxhooks("dispatcher", "-c", str(config), env={**os.environ, "TCXH_SERVICES_TOKEN_FILE": str(empty)})
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"[services] token: TCXH_SERVICES_TOKEN_FILE={empty} is empty" in line


def test_up_makes_a_random_token_per_run_that_the_cli_finds(tmp_path: Path) -> None:
    config = write_config(tmp_path, webhook={"url": "http://127.0.0.1:9/crm"})
    services = load_config(str(config), (PlatformSettings,))[PlatformSettings].services
    address = read_config(config)["services"]["dispatcher"]
    tokens = []
    for run in range(2):
        with running(["up", "--only", "dispatcher", "-c", str(config)], tmp_path / f"up{run}.log"):
            wait_healthy(address)
            path = run_token_path(services)
            assert path.stat().st_mode & 0o777 == 0o600
            tokens.append(path.read_text())
            with grpc.insecure_channel(address) as channel:
                with pytest.raises(grpc.RpcError) as refused:
                    channel.unary_unary("/tcxhooks.v1.DispatcherService/ListEndpoints")(b"", timeout=10)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            listed = tcxhooks("endpoints", "-c", str(config))
            assert listed.returncode == 0, listed.stderr
            assert "default" in listed.stdout
        assert not path.exists()
    assert len(set(tokens)) == 2 and all(len(token) == 64 for token in tokens)


def test_calls_without_the_token_are_refused_unread_counted_and_logged_at_a_bounded_rate(tmp_path: Path) -> None:
    with served(tmp_path, "dispatcher", services={"token": TOKEN}) as service:
        before = service.rss_mib()
        bulk = b"\x00" * BULK
        with ThreadPoolExecutor(4) as pool:
            missing = list(pool.map(lambda body: service.raw("PublishBatch", body), [bulk] * 8))
            wrong = list(pool.map(lambda body: service.raw("Publish", body, token="guessed"), [bulk] * 8))
        del bulk
        assert {code for code, _ in missing} == {grpc.StatusCode.UNAUTHENTICATED}
        assert {code for code, _ in wrong} == {grpc.StatusCode.UNAUTHENTICATED}
        assert service.metric("tcxhooks_grpc_refused_total", service="dispatcher", reason="missing_token") == 8
        assert service.metric("tcxhooks_grpc_refused_total", service="dispatcher", reason="wrong_token") == 8
        # 960 MB were sent; none of it was read into the process (one such call read held 60 MB).
        assert service.rss_mib() - before < 40
        wait_until(lambda: "refused a call without the service token" in service.log(), 10, "the refusal logged")
        lines = [line for line in service.log().splitlines() if "refused a call without the service token" in line]
        assert 1 <= len(lines) < 16
        assert "/tcxhooks.v1.DispatcherService/Publish" in lines[0]
        # health stays open to probes, and the right token passes
        wait_healthy(service.address)
        assert service.raw("ListEndpoints", b"", token=TOKEN)[0] == grpc.StatusCode.OK


def test_the_refusal_log_reports_once_per_period_with_the_count_in_between(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    report = RefusalLog(every=10, clock=lambda: now[0])
    for _ in range(5):
        report.refused("missing_token", "/x.Y/Z", "ipv4:10.0.0.9:5555")
    now[0] += 10
    report.refused("wrong_token", "/x.Y/W", "ipv4:10.0.0.9:5556")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused a call without the service token (missing_token): '/x.Y/Z' from ipv4:10.0.0.9:5555",
        "refused a call without the service token (wrong_token): '/x.Y/W' from ipv4:10.0.0.9:5556 "
        "(4 more refused since the last report)",
    ]
