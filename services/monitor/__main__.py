"""`python -m tcxhooks monitor -c FILE`: the monitor service process."""

from __future__ import annotations

from tcxhooks.platform import runtime

from .config import MonitorSettings
from .server import build


def main(argv: list[str] | None = None) -> None:
    runtime.run("monitor", MonitorSettings, build, argv, grpc_service="tcxhooks.v1.MonitorService")


if __name__ == "__main__":
    main()
