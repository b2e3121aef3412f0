"""`tcxhooks media -c FILE` / `python -m tcxhooks.media`: the media service process."""

from __future__ import annotations

from tcxhooks.platform import runtime

from .config import MediaSettings
from .server import build


def main(argv: list[str] | None = None) -> None:
    runtime.run("media", MediaSettings, build, argv, grpc_service="tcxhooks.v1.MediaService")


if __name__ == "__main__":
    main()
