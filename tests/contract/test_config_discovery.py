"""The services and the CLI find the ini file by one rule (-c, TCXH_CONFIG, ./tcxhooks.ini), and an auth
error says which service token the command sent and where it came from, never its value."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.services import read_config, stop, wait_healthy, write_config

TOKEN = "discovery-test-token"


def tcxhooks(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TCXH_")}
    return subprocess.run(
        [sys.executable, "-m", "tcxhooks", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[Path]:
    """A dispatcher started in a folder holding tcxhooks.ini, without -c or TCXH_CONFIG."""
    folder = tmp_path / "service"
    folder.mkdir()
    config = write_config(folder, services={"token": TOKEN}, webhook={"url": "http://127.0.0.1:9/crm"})
    assert config == folder / "tcxhooks.ini"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TCXH_")}
    with open(folder / "dispatcher.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tcxhooks", "dispatcher"],
            cwd=folder,
            env=clean,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(read_config(config)["services"]["dispatcher"], 60)
        yield config
    finally:
        stop(proc)


def test_a_command_finds_tcxhooks_ini_in_its_folder_as_the_service_did(dispatcher: Path) -> None:
    listed = tcxhooks("endpoints", cwd=dispatcher.parent)
    assert listed.returncode == 0, listed.stderr
    assert "default" in listed.stdout and "enabled" in listed.stdout


def test_tcxh_config_names_the_file_from_anywhere(dispatcher: Path, tmp_path: Path) -> None:
    listed = tcxhooks("endpoints", cwd=tmp_path, env={"TCXH_CONFIG": str(dispatcher)})
    assert listed.returncode == 0, listed.stderr


def test_an_auth_error_names_the_token_sent_and_where_it_came_from(dispatcher: Path, tmp_path: Path) -> None:
    address = {"TCXH_SERVICES_DISPATCHER": read_config(dispatcher)["services"]["dispatcher"]}
    none = tcxhooks("endpoints", cwd=tmp_path, env=address)
    assert none.returncode == 1
    assert "dispatcher answered UNAUTHENTICATED" in none.stderr
    assert "this command sent no service token" in none.stderr and "-c" in none.stderr
    wrong = tmp_path / "token"
    wrong.write_text("not-the-right-token\n")
    refused = tcxhooks("endpoints", cwd=tmp_path, env={**address, "TCXH_SERVICES_TOKEN_FILE": str(wrong)})
    assert refused.returncode == 1
    assert f"this command sent the service token from TCXH_SERVICES_TOKEN_FILE={wrong}" in refused.stderr
    assert "not-the-right-token" not in refused.stderr + refused.stdout
    (tmp_path / "tcxhooks.ini").write_text(
        f"[services]\ndispatcher = {address['TCXH_SERVICES_DISPATCHER']}\ntoken = also-wrong\n"
    )
    in_file = tcxhooks("endpoints", cwd=tmp_path)
    assert "the service token from [services] token in tcxhooks.ini" in in_file.stderr
    assert "also-wrong" not in in_file.stderr
