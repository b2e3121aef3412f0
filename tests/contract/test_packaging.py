"""Packaging contract: every package directory is installed, the platform's public names, the CLI."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import types
from pathlib import Path

import tcxhooks.platform

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> tuple[list[str], dict[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    return setuptools["packages"], setuptools["package-dir"]


def test_every_package_directory_is_listed() -> None:
    packages, package_dir = _declared()
    found = set()
    for name, folder in package_dir.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            found.add(".".join([name, *relative.parts]) if relative.parts else name)
    # Subpackages of a mapped package inherit its folder (e.g. tcxhooks.platform from src/tcxhooks).
    assert sorted(found) == sorted(packages)


def test_platform_exports_exactly_its_public_names() -> None:
    public = {name for name in vars(tcxhooks.platform) if not name.startswith("_")}
    # its submodules (tcxhooks.platform.jobqueue, …) appear as attributes once anything imported them
    modules = {name for name, value in vars(tcxhooks.platform).items() if isinstance(value, types.ModuleType)}
    assert set(tcxhooks.platform.__all__) == public - modules


def test_services_never_import_each_other_or_the_simulator() -> None:
    services = ("monitor", "dispatcher", "media", "analytics")
    for service in services:
        for path in (ROOT / "services" / service).rglob("*.py"):
            text = path.read_text()
            for other in (*services, "simulator"):
                if other != service:
                    assert f"tcxhooks.{other}" not in text, f"{path} imports tcxhooks.{other}"
    for path in (ROOT / "src" / "tcxhooks" / "platform").rglob("*.py"):
        text = path.read_text()
        assert not any(f"tcxhooks.{s}" in text for s in (*services, "simulator")), path


def test_cli_help_and_unknown_command() -> None:
    ok = subprocess.run([sys.executable, "-m", "tcxhooks", "--help"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "tcxhooks up -c FILE" not in ok.stderr and "up -c FILE" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "tcxhooks", "launch"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown command 'launch'" in bad.stderr
