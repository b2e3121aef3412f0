"""Maps environment variable names to the config keys (of every service's settings) they override.

    config_key("TCXH_RECORDINGS_S3_SECRET_KEY_FILE")  # Key("recordings", "s3_secret_key", secret=True, file=True)

Besides `TCXH_<SECTION>_<KEY>` (and `_FILE` for secrets), the containers may set `TCXH_CONFIG` (the
ini path, read by every command's `-c` default) and `PGPASSWORD` (libpq's password for the store URL).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from tcxhooks.platform import configfile
from tcxhooks.platform.config import ENV_PREFIX, Section, keys_of
from tcxhooks.product import owned_sections

NON_CONFIG = {"TCXH_CONFIG", "PGPASSWORD"}


@dataclass(frozen=True)
class Key:
    section: str
    key: str
    secret: bool
    file: bool


def _keys(section_cls: type[Section]) -> dict[str, bool]:
    return {name: bool(f.metadata["secret"]) for name, f in keys_of(section_cls).items()}


def config_key(name: str) -> Key:
    """The key `name` overrides; AssertionError when it overrides nothing."""
    assert name.startswith(ENV_PREFIX), f"{name}: not a {ENV_PREFIX}* variable"
    rest, file = (name[: -len("_FILE")], True) if name.endswith("_FILE") else (name, False)
    rest = rest[len(ENV_PREFIX) :]
    candidates: list[Key] = []
    for cls in owned_sections():
        section = cls.SECTION
        for key, secret in _keys(cls).items():
            if rest == f"{section}_{key}".upper():
                candidates.append(Key(section, key, secret, file))
            elif (
                cls.REPEATED
                and rest.startswith(f"{section}_".upper())
                and rest.endswith(f"_{key}".upper())
                and len(rest) > len(f"{section}__{key}")
            ):
                instance = rest[len(section) + 1 : -len(key) - 1].lower()
                candidates.append(Key(f"{section}:{instance}", key, secret, file))
    assert candidates, f"{name} names no config key"
    found = candidates[0]
    assert not found.file or found.secret, f"{name}: only secrets may be read from a _FILE"
    return found


def check_env_names(names: list[str]) -> None:
    """Every name is a config override or one of the documented non-config variables."""
    assert "TCXH_CONFIG" in inspect.getsource(configfile), "the commands no longer read TCXH_CONFIG"
    for name in names:
        if name not in NON_CONFIG:
            config_key(name)
