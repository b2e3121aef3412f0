"""`python -m tcxhooks.analytics -c FILE`: the analytics service process."""

from __future__ import annotations

from tcxhooks.platform import runtime

from .config import AnalyticsSettings
from .server import build


def main(argv: list[str] | None = None) -> None:
    runtime.run("analytics", AnalyticsSettings, build, argv, grpc_service="tcxhooks.v1.AnalyticsService")


if __name__ == "__main__":
    main()
