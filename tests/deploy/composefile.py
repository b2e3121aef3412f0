"""Loads compose.yaml the way `docker compose config` does for the parts we use: YAML with merge
keys, then `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}` and `$$`.

    compose = load_compose(Path("compose.yaml"), read_env_file(Path("deploy/env.example")))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(Exception):
    """A `${VAR:?error}` variable is unset (compose refuses to start)."""


def variables(text: str) -> set[str]:
    """Names of every variable the file refers to."""
    return {m.group("name") or m.group("bare") for m in _VAR.finditer(text) if m.group(0) != "$$"}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        present = name in env
        empty = not env.get(name)
        if op in (":-", "-"):
            use_default = empty if op == ":-" else not present
            return arg if use_default else env[name]
        if op in (":?", "?") and (empty if op == ":?" else not present):
            raise MissingVariable(f"{name}: {arg}")
        return env.get(name, "")

    return _VAR.sub(replace, value)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, env) for v in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def load_compose(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return _walk({k: v for k, v in data.items() if not k.startswith("x-")}, env)  # type: ignore[no-any-return]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not KEY=VALUE: {line!r}"
            env[key.strip()] = value.strip()
    return env


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (the list form `KEY=VALUE` too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}
