"""`tcxhooks dispatcher -c FILE` / `python -m tcxhooks.dispatcher`: the dispatcher service."""
from __future__ import annotations

from tcxhooks.platform import runtime

from .server import build


def main(argv: list[str] | None = None) -> None:
    runtime.run("dispatcher", build, argv)


if __name__ == "__main__":
    main()
