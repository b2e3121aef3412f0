"""Loopback ports for the processes a test must tell their port before they start.

A server the test runs itself binds port 0 and reads its port back. A process given its port on the
command line or in its config needs one chosen first, and a port that was free when chosen can be taken
before the process binds it. So the ports come from below the system's ephemeral range, where no
outgoing connection's local port lands, and each pytest-xdist worker has its own slice of them, so two
workers never choose the same one. Within a slice they go round from a random start (two runs on one
machine rarely meet), each checked free when chosen. Only one port in STRIDE is chosen: `tcxhooks up`
gives its services the metrics ports after the one it is given (P+1 … P+3).
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

LOWEST = 10000  # below: well-known services' ports
STRIDE = 8


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _slice() -> range:
    """This worker's ports (all of them outside pytest-xdist)."""
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = (_ephemeral_start() - LOWEST) // max(workers, 1) // STRIDE * STRIDE
    return range(LOWEST + index * size, LOWEST + (index + 1) * size, STRIDE)


def _round() -> Iterator[int]:
    ports = _slice()
    start = random.randrange(len(ports)) if len(ports) else 0
    return itertools.cycle([*ports[start:], *ports[:start]])


_candidates: Iterator[int] | None = None


def _bound(port: int) -> int | None:
    """The port a socket bound to `port` got (0: the system's pick), or None when it is taken."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(sock.getsockname()[1])


def free_port() -> int:
    global _candidates
    if len(_slice()) < 50:  # an ephemeral range starting low: no room below it
        port = _bound(0)
        assert port, "cannot bind a loopback socket"
        return port
    if _candidates is None:
        _candidates = _round()
    for port in itertools.islice(_candidates, 1000):
        if _bound(port) is not None:
            return port
    raise RuntimeError(f"no free port in {_slice()}")
