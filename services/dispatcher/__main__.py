"""`tcxhooks dispatcher -c FILE` / `python -m tcxhooks.dispatcher`: the dispatcher service."""

from __future__ import annotations

import sys

from tcxhooks.platform import runtime

from .config import DispatcherSettings
from .server import build
from .servicer import REQUEST_LIMITS

# The SQLite store runs each transaction in a thread that takes the GIL back after every statement,
# while the event loop mostly holds it: a thread waiting for the GIL asks the holder to let go only
# after the interpreter's switch interval (5 ms by default). A shorter one cuts a publish's commit
# under a flood (docs/performance.md, 2026-12-07); 0.5 ms measured worse than 1 (more switching).
SWITCH_INTERVAL = 0.001


def main(argv: list[str] | None = None) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    runtime.run(
        "dispatcher",
        DispatcherSettings,
        build,
        argv,
        grpc_service="tcxhooks.v1.DispatcherService",
        request_limits=REQUEST_LIMITS,
    )


if __name__ == "__main__":
    main()
