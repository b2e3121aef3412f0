"""`tcxhooks dispatcher -c FILE` / `python -m tcxhooks.dispatcher`: the dispatcher service."""

from __future__ import annotations

from tcxhooks.platform import runtime

from .config import DispatcherSettings
from .server import build
from .servicer import REQUEST_LIMITS


def main(argv: list[str] | None = None) -> None:
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
