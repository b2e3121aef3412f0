"""Which ini file a command reads: one rule for the services and every CLI command (docs/config.md).

    parser = argparse.ArgumentParser(...)
    add_config_option(parser)
    path = find_config(parser.parse_args(argv).config)

`-c FILE` first, then the TCXH_CONFIG variable, then ./tcxhooks.ini when it exists; with none of
them the environment alone (TCXH_<SECTION>_<KEY>) configures.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

CONFIG_VARIABLE = "TCXH_CONFIG"
DEFAULT_FILE = "tcxhooks.ini"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"the ini file (default: ${CONFIG_VARIABLE}, else ./{DEFAULT_FILE} if it exists)",
    )


def find_config(given: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The ini file to read: `given` (-c), else TCXH_CONFIG, else ./tcxhooks.ini if present, else None."""
    env = os.environ if env is None else env
    if given:
        return given
    if env.get(CONFIG_VARIABLE):
        return env[CONFIG_VARIABLE]
    return DEFAULT_FILE if os.path.isfile(DEFAULT_FILE) else None
