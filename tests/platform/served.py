"""A real service process for the platform's gRPC tests: its address, metrics, memory and log.

with served(tmp_path, "dispatcher", services={"token": TOKEN}) as service:
    service.raw("ListEndpoints", b"...", token=TOKEN)      # any bytes to any RPC
    service.metric("tcxhooks_grpc_refused_total", reason="missing_token")
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tests.helpers.services import read_config, start, stop, wait_healthy, write_config

GRPC_NAMES = {
    "monitor": "MonitorService",
    "dispatcher": "DispatcherService",
    "media": "MediaService",
    "analytics": "AnalyticsService",
}


@dataclass
class Served:
    name: str
    config: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return read_config(self.config)["services"][self.name]

    def metrics(self) -> str:
        port = read_config(self.config)["metrics"]["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """The sum of `name` over the series carrying `labels` (0 when none does)."""
        total = 0.0
        for line in self.metrics().splitlines():
            match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
            if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def rss_mib(self) -> float:
        """The process's resident memory, as the kernel counts it."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return kib / 1024

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def raw(
        self, method: str, request: bytes, token: str | None = None, timeout: float = 30, **channel: Any
    ) -> tuple[grpc.StatusCode, str]:
        """Calls `method` of the service with `request` as its bytes; the status code and details."""
        metadata = [("authorization", f"Bearer {token}")] if token is not None else []
        options = [("grpc.max_send_message_length", -1)]
        with grpc.insecure_channel(self.address, options=options) as chan:
            call = chan.unary_unary(f"/tcxhooks.v1.{GRPC_NAMES[self.name]}/{method}")
            try:
                call(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as exc:
                return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""


@contextlib.contextmanager
def served(
    folder: Path, name: str, env: Mapping[str, str] | None = None, **sections: Mapping[str, object]
) -> Iterator[Served]:
    """`tcxhooks <name>` on a config of `sections`, healthy; stopped at the end."""
    sections.setdefault("webhook", {"url": "http://127.0.0.1:9/crm"})
    config = write_config(folder, **sections)
    log_path = folder / f"{name}.log"
    proc = start([name, "-c", str(config)], log_path, env)
    try:
        service = Served(name, config, proc, log_path)
        health_port = read_config(config)["services"].get("health_port", "0")
        wait_healthy(f"127.0.0.1:{health_port}" if health_port != "0" else service.address, 30)
        yield service
    finally:
        stop(proc)
