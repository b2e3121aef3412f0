"""Run tcxhooks commands as real processes for tests, and wait for their gRPC health.

sim = start_simulator(tmp_path, "crmhooks", "secret")
cfg = write_config(tmp_path, webhook={"url": crm.url}, pbx=sim.pbx(ringing_grace="1"))
with running(["dispatcher", "-c", cfg]) as proc:
    wait_healthy(addr)
"""

from __future__ import annotations

import configparser
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .net import free_port


def write_config(folder: Path, **sections: Mapping[str, object]) -> Path:
    """An ini file with free ports for every service and metrics, a store and a recordings dir in `folder`.

    Section names with a colon are passed as keyword dicts via `**{"webhook:crm2": {...}}`.
    """
    parser = configparser.ConfigParser(interpolation=None)
    defaults: dict[str, dict[str, object]] = {
        "store": {"url": f"sqlite:///{folder / 'tcxhooks.db'}"},
        "services": {name: f"127.0.0.1:{free_port()}" for name in ("monitor", "dispatcher", "media", "analytics")},
        "metrics": {"port": free_port()},
        "recordings": {"local_dir": str(folder / "recordings")},
        "log": {"level": "info"},
    }
    media_port = free_port()
    defaults["recordings"].update({"listen": f"127.0.0.1:{media_port}", "public_url": f"http://127.0.0.1:{media_port}"})
    for name, values in sections.items():
        defaults.setdefault(name, {}).update(values)
    for name, values in defaults.items():
        parser[name] = {k: str(v) for k, v in values.items()}
    path = folder / "tcxhooks.ini"
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def read_config(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def tcxhooks_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tcxhooks", *args]


def start(
    args: list[str], log_path: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Starts `tcxhooks <args>` in its own process group; output goes to `log_path`."""
    full_env = {**os.environ, **(env or {})}
    # the child has its own copy of the log file
    with open(log_path, "ab") if log_path else contextlib.nullcontext(subprocess.DEVNULL) as out:
        return subprocess.Popen(
            tcxhooks_command(*args), stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )


@dataclass(frozen=True)
class Simulator:
    """A `tcxhooks sim` process, the OAuth client it lets in, and its log."""

    proc: subprocess.Popen[bytes]
    port: int
    client_id: str
    client_secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pbx(self, **settings: object) -> dict[str, object]:
        """A `[pbx]` config section that signs in to this simulator, with `settings` added."""
        return {"url": self.url, "client_id": self.client_id, "client_secret": self.client_secret, **settings}

    def wait_ready(self) -> None:
        """Returns once the simulator answers HTTP; fails at once if its process exited, showing its log's end."""
        try:
            wait_http(f"{self.url}/sim/scenarios", proc=self.proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log.read_text(errors='replace')[-2000:]}") from None


def start_simulator(folder: Path, client_id: str, client_secret: str, *extra: str) -> Simulator:
    """`tcxhooks sim *extra` on a free port, letting in `client_id`; its recordings and sim.log in `folder`."""
    port = free_port()
    args = ["sim", "--port", str(port), "--client-id", client_id, "--client-secret", client_secret]
    log = folder / "sim.log"
    proc = start([*args, "--recordings-dir", str(folder / "pbx-recordings"), *extra], log)
    return Simulator(proc, port, client_id, client_secret, log)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 of the process (and of its group, so no child survives)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@contextlib.contextmanager
def running(
    args: list[str], log_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(args, log_path, env)
    try:
        yield proc
    finally:
        stop(proc)


def wait_healthy(address: str, timeout: float = 30.0, service: str = "") -> None:
    """Polls grpc.health.v1 Check on `address` until SERVING."""
    deadline = time.monotonic() + timeout
    last: object = None
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = reply.status
            except grpc.RpcError as exc:
                last = exc.code()
            time.sleep(0.1)
    raise AssertionError(f"{address} not SERVING within {timeout}s (last: {last})")


def wait_http(url: str, timeout: float = 30, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Polls `url` until it answers at all (any status); fails at once if `proc` (its server) exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc is None or proc.poll() is None, f"{url}: the process exited with {proc.returncode}"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Polls `condition` every 50 ms; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
