"""The service token `tcxhooks up` makes when the config sets none, kept where the CLI finds it.

    path = write_run_token(services, secrets.token_hex(32))   # up: the services read it from this file
    read_run_token(services)                                  # a CLI command without a token: "" if none
    remove_run_token(services)                                # up, when it stops

Loopback is no boundary between the users of one host, so `up` never runs its services open. The file
lives in a folder only this user may enter ($XDG_RUNTIME_DIR/tcxhooks, else <tmp>/tcxhooks-<uid>) and
is named after the services' addresses: a command reading the same config finds the token of the
`up` serving those addresses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from .settings import SERVICE_NAMES, ServicesConfig


def _folder() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "tcxhooks"
    return Path(tempfile.gettempdir()) / f"tcxhooks-{os.getuid()}"


def _private(folder: Path) -> bool:
    """Whether `folder` is a real folder of this user that no one else may enter."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def run_token_path(services: ServicesConfig) -> Path:
    addresses = "|".join(services.address(name) for name in SERVICE_NAMES)
    return _folder() / f"up-{hashlib.sha256(addresses.encode()).hexdigest()[:16]}.token"


def write_run_token(services: ServicesConfig, token: str) -> Path:
    """Writes `token` readable by this user alone; raises OSError when no private folder can be had."""
    path = run_token_path(services)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if not _private(path.parent):
        raise OSError(f"{path.parent} is not a folder of this user closed to others")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    return path


def read_run_token(services: ServicesConfig) -> str:
    path = run_token_path(services)
    if not _private(path.parent):
        return ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ""
    with os.fdopen(fd, encoding="utf-8") as handle:
        return handle.read().strip()


def remove_run_token(services: ServicesConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        run_token_path(services).unlink()
