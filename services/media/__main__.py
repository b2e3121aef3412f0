"""`tcxhooks media -c FILE` / `python -m tcxhooks.media`: the media service process."""
from __future__ import annotations

from tcxhooks.platform import runtime

from .server import build


def main(argv: list[str] | None = None) -> None:
    # asyncio's own loop: ffmpeg is fed through subprocess pipes, and under uvloop the pipe widening
    # of transcode.py silently does nothing (no "pipe" extra) and one CI run published a recording
    # cut at exactly 4 MiB of wav after a kill -9 and restart, never seen on this loop in 12 stops.
    runtime.run("media", build, argv, uvloop=False)


if __name__ == "__main__":
    main()
