"""Where the services listen, read from the kernel's socket tables (/proc/net/tcp*) of real processes:
under `tcxhooks up` on its default loopback addresses nothing listens beyond loopback, /metrics
included; a service addressed beyond loopback listens on every interface, /metrics too."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tests.helpers.net import free_port
from tests.helpers.services import read_config, running, wait_healthy, write_config

from .served import served

LISTEN = "0A"


def listening_on(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port`."""
    found = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state != LISTEN or int(hex_port, 16) != port:
                    continue
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
                ip = ipaddress.ip_address(words)
                mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
                found.add(str(mapped or ip))
    return found


def test_up_on_loopback_exposes_nothing_beyond_it_metrics_included(tmp_path: Path) -> None:
    config = write_config(tmp_path, webhook={"url": "http://127.0.0.1:9/crm"})
    parsed = read_config(config)
    metrics = int(parsed["metrics"]["port"]) + 1  # the dispatcher's, under up
    with running(["up", "--only", "dispatcher", "-c", str(config)], tmp_path / "up.log"):
        wait_healthy(parsed["services"]["dispatcher"])
        assert listening_on(metrics) == {"127.0.0.1"}
        assert listening_on(int(parsed["services"]["dispatcher"].rpartition(":")[2])) == {"127.0.0.1"}


def test_a_service_addressed_beyond_loopback_listens_and_serves_metrics_everywhere(tmp_path: Path) -> None:
    port = free_port()
    with served(tmp_path, "dispatcher", services={"dispatcher": f"0.0.0.0:{port}", "token": "listen-test"}) as service:
        metrics = int(read_config(service.config)["metrics"]["port"])
        assert listening_on(metrics) == {"0.0.0.0"}
        assert listening_on(port) == {"::"}
