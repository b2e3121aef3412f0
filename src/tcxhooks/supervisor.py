"""`tcxhooks up`: the four services on one host, each its own process, supervised.

A child that dies is restarted with capped backoff. SIGTERM/SIGINT stops the producers first
(monitor, media, analytics) and the dispatcher last; every service drains on its own and
anything not yet delivered stays in the store for the next start.

Without a `[services] token`, `up` makes a random one for the run (runtoken.py): the services never
answer other users of the host, and the CLI run with the same config finds it.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .platform.configfile import add_config_option, find_config
from .platform.logging import setup_logging
from .platform.runtime import load_or_exit
from .platform.runtoken import remove_run_token, write_run_token
from .platform.settings import PlatformSettings, ServicesConfig
from .product import SERVICES, SETTINGS

log = logging.getLogger("tcxhooks.supervisor")

START_ORDER = ("dispatcher", "analytics", "media", "monitor")
STOP_ORDER = ("monitor", "media", "analytics", "dispatcher")
MAX_BACKOFF = 30.0
METRICS_OFFSET = {"monitor": 0, "dispatcher": 1, "media": 2, "analytics": 3}  # added to [metrics] port


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, env=self.env)
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def child_env(name: str, base_port: int, services: ServicesConfig, token_file: str = "") -> dict[str, str]:
    """The environment of one service: its own metrics and health ports, the run's token file if any."""
    env = dict(os.environ)
    if base_port:
        env["TCXH_METRICS_PORT"] = str(base_port + METRICS_OFFSET[name])
    if services.health_port:
        env["TCXH_SERVICES_HEALTH_PORT"] = str(services.health_port + METRICS_OFFSET[name])
    if token_file:
        env.pop("TCXH_SERVICES_TOKEN", None)
        env["TCXH_SERVICES_TOKEN_FILE"] = token_file
    return env


def run_token_file(services: ServicesConfig) -> str:
    """A random token for this run when the config sets none (its file's path), else ""."""
    if services.token:
        return ""
    try:
        path = write_run_token(services, secrets.token_hex(32))
    except OSError as exc:
        print(f"tcxhooks up: no [services] token is set and none can be made for this run: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("no [services] token set: the services use a random one for this run (%s)", path)
    return str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tcxhooks up", description="Run all four services on this host.")
    add_config_option(parser)
    parser.add_argument("--only", default=",".join(SERVICES), help="comma list of services to run (default: all)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        print(f"tcxhooks up: unknown service(s) {', '.join(unknown)}; expected {', '.join(SERVICES)}", file=sys.stderr)
        raise SystemExit(2)
    path = find_config(args.config)
    config = load_or_exit(path, [SETTINGS[name] for name in names])
    platform = config[PlatformSettings]
    setup_logging(platform.log.level, platform.log.format, config.secrets(), "supervisor")
    config_args = ["-c", os.path.abspath(path)] if path else []
    token_file = run_token_file(platform.services)
    children = [
        Child(
            name,
            [sys.executable, "-m", "tcxhooks", name, *config_args],
            child_env(name, platform.metrics.port, platform.services, token_file),
        )
        for name in START_ORDER
        if name in names
    ]
    try:
        code = supervise(children, grace=platform.services.grace)
    finally:
        if token_file:
            remove_run_token(platform.services)
    raise SystemExit(code)


def supervise(children: list[Child], grace: float) -> int:
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for child in children:
        child.start()
    while not stopping:
        now = time.monotonic()
        for child in children:
            if child.alive() or stopping:
                continue
            if child.proc is not None and child.next_start == 0.0:
                code = child.proc.returncode
                if code == 2:
                    log.error("%s exited with a configuration error; not restarting it", child.name)
                    stopping = True
                    break
                # A child that ran for a while gets a fresh backoff.
                if now - child.started > 60:
                    child.restarts = 0
                delay = min(MAX_BACKOFF, 0.5 * 2**child.restarts)
                child.restarts += 1
                child.next_start = now + delay
                log.warning("%s exited with code %s; restarting in %.1fs", child.name, code, delay)
            if child.next_start and now >= child.next_start:
                child.next_start = 0.0
                child.start()
        time.sleep(0.2)
    return shutdown(children, grace)


def shutdown(children: list[Child], grace: float) -> int:
    """Stops producers first and the dispatcher last; each gets grace + a margin to drain."""
    by_name = {child.name: child for child in children}
    failed = False
    for name in STOP_ORDER:
        child = by_name.get(name)
        if child is None or not child.alive():
            continue
        assert child.proc is not None
        child.proc.send_signal(signal.SIGTERM)
        try:
            code = child.proc.wait(grace + 10)
        except subprocess.TimeoutExpired:
            log.error("%s did not stop in time; killing it", name)
            child.proc.kill()
            code = child.proc.wait()
        if code not in (0, -signal.SIGTERM):
            failed = True
        log.info("%s stopped (code %s)", name, code)
    return 1 if failed else 0
