"""The Dockerfile, checked without a Docker engine: its stages, the build context, the wheel stage's
command run for real on the staged context, the runtime user, the command, and the HEALTHCHECK run
against a real service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tcxhooks.cli import COMMANDS
from tcxhooks.product import SERVICES, load_product
from tests.helpers.services import write_config

from .conftest import ROOT, Live
from .dockerfile import Stage, context_files, ignored, parse_dockerfile, read_dockerignore
from .test_k8s import HEALTH_PORT, PINNED

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def ignore() -> list[str]:
    return read_dockerignore(ROOT / ".dockerignore")


def runtime_stage(stages: list[Stage]) -> Stage:
    return stages[-1]


def healthcheck_command(stages: list[Stage]) -> list[str]:
    """The HEALTHCHECK's command as this test environment runs it (`tcxhooks` is the package's script)."""
    (check,) = runtime_stage(stages).instructions("HEALTHCHECK")
    argv = check.exec_form()
    assert argv[0] == "tcxhooks" and argv[1] in COMMANDS, argv
    return [sys.executable, "-m", "tcxhooks", *argv[1:]]


def test_every_stage_is_python_311_slim_and_the_runtime_installs_the_built_wheel(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert {s.base.partition("@")[0] for s in stages} == {"python:3.11-slim"}
    names = [s.name for s in stages]
    assert names[-1] == "runtime"
    mounts = [i.flags().get("mount", "") for i in runtime_stage(stages).instructions("RUN")]
    sources = {part.split("=", 1)[1] for m in mounts for part in m.split(",") if part.startswith("from=")}
    assert sources and sources <= set(names[:-1]), f"runtime must install from a builder stage, got {sources}"
    assert not runtime_stage(stages).instructions("COPY"), "the runtime stage gets nothing but the wheels"


def test_runtime_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    stage = runtime_stage(stages)
    (user,) = stage.instructions("USER")
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "a numeric non-root uid lets runAsNonRoot verify it"
    assert f"--uid {uid}" in " ".join(r.args for r in stage.instructions("RUN")), "the user is created"
    order = [i.keyword for i in stage.items]
    assert order.index("USER") < order.index("ENTRYPOINT")


def test_entrypoint_and_default_command_are_real_cli_commands(stages: list[Stage]) -> None:
    stage = runtime_stage(stages)
    (entrypoint,) = stage.instructions("ENTRYPOINT")
    (cmd,) = stage.instructions("CMD")
    assert entrypoint.exec_form() == ["tcxhooks"]
    assert PYPROJECT["project"]["scripts"]["tcxhooks"] == "tcxhooks.cli:main"
    command = cmd.exec_form()
    assert command[0] in COMMANDS
    reply = subprocess.run([sys.executable, "-m", "tcxhooks", *command, "--help"], capture_output=True, timeout=60)
    assert reply.returncode == 0, reply.stderr.decode()


def test_exposes_the_default_ports_of_every_service(stages: list[Stage]) -> None:
    (expose,) = runtime_stage(stages).instructions("EXPOSE")
    defaults = {
        "TCXH_PBX_URL": "https://pbx.example.com",
        "TCXH_PBX_CLIENT_ID": "c",
        "TCXH_WEBHOOK_URL": "https://crm.example.com",
    }
    config = load_product(None, env=defaults)
    expected = {int(config.platform.services.address(n).rpartition(":")[2]) for n in SERVICES}
    expected |= {config.platform.metrics.port, int(config.media.recordings.listen.rpartition(":")[2])}
    expected.add(HEALTH_PORT)  # not a default: compose and Kubernetes set it (the probes' port)
    assert {int(p) for p in expose.args.split()} == expected


def test_build_context_has_everything_the_wheel_needs_and_no_local_stubs(
    stages: list[Stage], ignore: list[str]
) -> None:
    copied = [i.operands()[:-1] for i in stages[0].instructions("COPY")]
    sources = {s.rstrip("/") for group in copied for s in group}
    needed = {
        "pyproject.toml",
        "setup.py",
        PYPROJECT["project"]["readme"],
        "proto",
        *PYPROJECT["project"]["license-files"],
    }
    needed |= {d.split("/")[0] for d in PYPROJECT["tool"]["setuptools"]["package-dir"].values()}
    assert needed <= sources, f"not copied: {needed - sources}"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(ignore, source), f"{source} is copied but .dockerignore excludes it"
    files = context_files(ROOT, ignore)
    assert not [f for f in files if "_pb2" in f], "locally generated stubs must be rebuilt in the image"
    assert not [f for f in files if f.startswith((".venv/", ".git/", "data/"))]


def test_wheel_stage_builds_the_package_with_generated_stubs(
    stages: list[Stage], ignore: list[str], tmp_path: Path
) -> None:
    """Runs the wheel stage's RUN on a copy of what its COPY lines put in the image (dependencies left out)."""
    context = tmp_path / "src"
    wanted = [i.operands() for i in stages[0].instructions("COPY")]
    files = context_files(ROOT, ignore)
    for *sources, _dest in wanted:
        for source in sources:
            for rel in files:
                if rel == source.rstrip("/") or rel.startswith(source.rstrip("/") + "/"):
                    (context / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / rel, context / rel)
    (run,) = stages[0].instructions("RUN")
    wheels = tmp_path / "wheels"
    command = run.args.replace("/wheels", str(wheels)).replace("pip ", f"{sys.executable} -m pip ", 1)
    env = {**os.environ, "PIP_NO_DEPS": "1", "EXTRAS": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    reply = subprocess.run(["sh", "-c", command], cwd=context, env=env, capture_output=True, timeout=300)
    assert reply.returncode == 0, reply.stderr.decode()[-3000:]
    (wheel,) = wheels.glob("tcxhooks-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if n.endswith(".dist-info/licenses/LICENSE")], "the wheel carries the license"
    for proto in (ROOT / "proto" / "tcxhooks" / "v1").glob("*.proto"):
        assert f"tcxhooks/v1/{proto.stem}_pb2.py" in names and f"tcxhooks/v1/{proto.stem}_pb2_grpc.py" in names
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        assert package.replace(".", "/") + "/__init__.py" in names, package
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tcxhooks = tcxhooks.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_healthcheck_passes_on_a_ready_service(stages: list[Stage], live: Live) -> None:
    env = {**os.environ, "TCXH_CONFIG": str(live.config)}
    reply = subprocess.run(healthcheck_command(stages), env=env, capture_output=True, timeout=30)
    assert reply.returncode == 0, reply.stderr.decode()


def test_healthcheck_fails_when_nothing_serves(stages: list[Stage], tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {**os.environ, "TCXH_CONFIG": str(config)}
    reply = subprocess.run(healthcheck_command(stages), env=env, capture_output=True, timeout=30)
    assert reply.returncode == 1, reply.stderr.decode()


def test_healthcheck_fails_on_a_bad_config(stages: list[Stage], tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[services]\ndispatcher = nowhere\n", encoding="utf-8")
    env = {**os.environ, "TCXH_CONFIG": str(bad)}
    reply = subprocess.run(healthcheck_command(stages), env=env, capture_output=True, timeout=30)
    assert reply.returncode != 0 and b"dispatcher" in reply.stderr


def test_the_base_image_and_the_frontend_are_pinned_by_digest(stages: list[Stage]) -> None:
    assert all(PINNED.fullmatch(s.base) for s in stages), [s.base for s in stages]
    first = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# syntax=") and PINNED.fullmatch(first.removeprefix("# syntax="))
