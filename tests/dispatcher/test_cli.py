"""`tcxhooks deliveries`, `redeliver` and `endpoints` against a real dispatcher."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tcxhooks.v1 import dispatcher_service_pb2 as pb
from tests.fakes.receiver import Receiver
from tests.helpers.services import tcxhooks_command, write_config

from .conftest import Dispatchers, answered, new_chain, ringing


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tcxhooks_command(*args), capture_output=True, text=True, timeout=60)


def test_deliveries_redeliver_and_endpoints(dispatchers: Dispatchers) -> None:
    chain = new_chain()
    with Receiver() as crm:
        d = dispatchers.make(webhook={"url": crm.url}, dispatcher={"retry_schedule": "1s"})
        config = str(d.config)
        crm.respond(500, 500)
        d.publish(ringing(chain))
        d.publish(answered(chain))
        crm.wait_for_sync(1)
        d.settle()

        listed = cli("deliveries", "-c", config, "--call", chain, "--attempts")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split() == [
            "ID",
            "STATUS",
            "ENDPOINT",
            "EVENT",
            "CALL",
            "SEQ",
            "ATTEMPTS",
            "CREATED",
            "NEXT",
            "ATTEMPT",
            "WEBHOOK-ID",
        ]
        assert "dead" in lines[1] and "call.ringing" in lines[1] and f"{chain}-0" in lines[1]
        assert "HTTP 500" in lines[2] and "HTTP 500" in lines[3]
        assert "delivered" in lines[4] and "call.answered" in lines[4]

        dead = cli("deliveries", "-c", config, "--status", "dead")
        assert dead.returncode == 0 and len(dead.stdout.splitlines()) == 2
        dead_id, dead_webhook_id = dead.stdout.splitlines()[1].split()[0], dead.stdout.splitlines()[1].split()[-1]

        again = cli("redeliver", "-c", config, dead_id)
        assert again.returncode == 0 and again.stdout.strip() == "1 deliveries queued again"
        crm.wait_for_sync(2)
        assert crm.requests[1].headers["webhook-id"] == dead_webhook_id

        since = cli("redeliver", "-c", config, "--since", "1h")
        assert since.returncode == 0 and since.stdout.strip() == "2 deliveries queued again"
        crm.wait_for_sync(4)
        # a webhook-id as the CRM logged it names the event's delivery
        by_webhook_id = cli("redeliver", "-c", config, dead_webhook_id)
        assert by_webhook_id.returncode == 0 and by_webhook_id.stdout.strip() == "1 deliveries queued again"
        assert crm.wait_for_sync(5)[4].headers["webhook-id"] == dead_webhook_id

        disabled = cli("endpoints", "-c", config, "disable", "default")
        assert disabled.returncode == 0 and disabled.stdout.strip() == "endpoint default is disabled"
        refused = d.publish(ringing(new_chain()))  # a disabled endpoint takes no new deliveries
        assert refused.deliveries == 0
        listed = cli("endpoints", "-c", config)
        assert listed.returncode == 0
        row = listed.stdout.splitlines()[1].split()
        assert row[:4] == ["default", "disabled", "form", "0"]
        assert 'tcxhooks_dispatcher_refused_total{endpoint="default",reason="disabled"} 1.0' in d.metrics_text()
        assert cli("endpoints", "-c", config, "enable", "default").returncode == 0
        d.publish(ringing(new_chain()))
        crm.wait_for_sync(6)

        pinged = cli("endpoints", "-c", config, "ping")
        assert pinged.returncode == 0 and pinged.stdout.splitlines()[1].split()[:3] == ["default", "ok", "200"]
        ping = crm.wait_for_sync(7)[6]
        assert ping.form()["event"] == "ping" and ping.form()["id"]


def test_cli_usage_errors_exit_2(dispatchers: Dispatchers) -> None:
    d = dispatchers.make(webhook={"url": "http://127.0.0.1:9/hook"})
    config = str(d.config)
    for args in (
        ("redeliver", "-c", config),
        ("redeliver", "-c", config, "--since", "yesterday"),
        ("deliveries", "-c", config, "--status", "lost"),
        ("endpoints", "-c", config, "enable"),
        ("endpoints", "-c", config, "enable", "nosuch"),
        ("redeliver", "-c", config, "abc"),
        ("deliveries", "-c", "/nonexistent.ini"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.strip()
    d.stop()
    down = cli("deliveries", "-c", config)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr


def test_endpoint_urls_are_shown_without_their_secrets(dispatchers: Dispatchers) -> None:
    with Receiver() as crm:
        url = crm.url.replace("http://", "http://bot:s3cret-pass@") + "?token=s3cret-token&format=json"
        d = dispatchers.make(webhook={"url": url})
        listed = cli("endpoints", "-c", str(d.config))
        [endpoint] = d.call("ListEndpoints", pb.ListEndpointsRequest()).endpoints
        d.publish(ringing(new_chain()))
        [request] = crm.wait_for_sync(1)
    assert listed.returncode == 0, listed.stderr
    assert "bot:***@127.0.0.1" in listed.stdout and "token=***&format=***" in listed.stdout
    assert endpoint.url == url.replace("s3cret-pass", "***").replace("s3cret-token", "***").replace("=json", "=***")
    assert "s3cret" not in listed.stdout + endpoint.url + d.log()
    assert request.path.endswith("/hook")  # the CRM still gets the real URL (credentials as Basic auth)


@pytest.mark.parametrize("port", ["99999", "8o8o", "0"])
def test_an_endpoint_url_with_a_bad_port_is_refused_at_start(tmp_path: Path, port: str) -> None:
    config = write_config(
        tmp_path,
        services={"token": "t"},
        **{"webhook:crm": {"url": f"http://bot:s3cret@crm.example:{port}/hook?token=s3cret-token"}},
    )
    started = subprocess.run(
        tcxhooks_command("dispatcher", "-c", str(config)), capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 2, started.stderr
    [line] = started.stderr.strip().splitlines()
    assert "[webhook:crm] url" in line and "port" in line and "s3cret" not in line, line
