"""compose.yaml, parsed and cross-checked against the code: real commands, config keys, ports, the
Prometheus/Grafana wiring, and the bucket-init command run against a MinIO stand-in."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from urllib.parse import urlparse

import pytest
import yaml

from tcxhooks.cli import COMMANDS
from tcxhooks.media.minio_setup import POLICY, media_policy
from tcxhooks.product import SERVICES
from tests.fakes.minio import FakeMinio
from tests.helpers.config import ServiceConfig
from tests.helpers.config import service_config as load_service

from .composefile import environment, load_compose, read_env_file, variables
from .conftest import ROOT
from .dockerfile import parse_dockerfile
from .envmap import check_env_names, config_key

INI = ROOT / "deploy" / "tcxhooks.ini"
ENV_EXAMPLE = read_env_file(ROOT / "deploy" / "env.example")
COMPOSE = load_compose(ROOT / "compose.yaml", ENV_EXAMPLE)
SERVICES_OF = COMPOSE["services"]
STAGES = parse_dockerfile(ROOT / "Dockerfile")
IMAGE_CONFIG = (
    next(i.args for i in STAGES[-1].instructions("ENV") if "TCXH_CONFIG=" in i.args).split("TCXH_CONFIG=")[1].split()[0]
)


def service_config(name: str) -> ServiceConfig:
    return load_service(str(INI), name, environment(SERVICES_OF[name]))


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def test_every_variable_is_documented_in_env_example() -> None:
    used = variables((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert used == set(ENV_EXAMPLE), f"undocumented: {used - set(ENV_EXAMPLE)}, unused: {set(ENV_EXAMPLE) - used}"


def test_has_the_four_services_and_their_dependencies() -> None:
    assert set(SERVICES) | {"minio", "minio-init", "postgres", "prometheus", "grafana"} == set(SERVICES_OF)


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_its_cli_command_with_the_mounted_ini(name: str) -> None:
    service = SERVICES_OF[name]
    assert service["command"] == [name, "-c", IMAGE_CONFIG]
    assert service["command"][0] in COMMANDS
    assert service["build"] == {"context": ".", "target": STAGES[-1].name}
    assert f"./deploy/tcxhooks.ini:{IMAGE_CONFIG}:ro" in service["volumes"]


@pytest.mark.parametrize("name", SERVICES)
def test_env_names_are_config_keys_and_the_config_loads(name: str, caplog: pytest.LogCaptureFixture) -> None:
    check_env_names(list(environment(SERVICES_OF[name])))
    with caplog.at_level(logging.WARNING, logger="tcxhooks.platform.config"):
        config = service_config(name)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    if name == "monitor":
        assert config.pbx.client_secret
    if name == "media":
        assert config.recordings.storage == "s3" and config.recordings.s3_secret_key and config.recordings.link_secret
    assert config.services.token


@pytest.mark.parametrize("name", SERVICES)
def test_peers_are_addressed_by_compose_service_name_on_all_interfaces(name: str) -> None:
    config = service_config(name)
    for peer in SERVICES:
        host, _, port = getattr(config.services, peer).rpartition(":")
        assert host == peer and peer in SERVICES_OF, f"[services] {peer} = {host}:{port}"
    assert len({port_of(getattr(config.services, p)) for p in SERVICES}) == len(SERVICES)


def test_store_is_the_compose_postgres_and_its_password_stays_out_of_the_url() -> None:
    postgres = environment(SERVICES_OF["postgres"])
    for name in SERVICES:
        url = urlparse(service_config(name).store.url)
        assert url.scheme == "postgresql" and url.hostname == "postgres" and url.password is None
        assert url.username == postgres["POSTGRES_USER"] and url.path == "/" + postgres["POSTGRES_DB"]
        assert environment(SERVICES_OF[name])["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"]


def test_media_reaches_the_compose_minio_and_publishes_its_links_port() -> None:
    config = service_config("media").recordings
    minio = environment(SERVICES_OF["minio"])
    assert config.s3_endpoint.rpartition(":")[0] == "minio"
    assert "MINIO_ROOT_USER" in minio and config.s3_access_key != minio["MINIO_ROOT_USER"]
    assert not config.listen.startswith("127."), "the links server must listen beyond loopback"
    published = [p.split(":") for p in SERVICES_OF["media"]["ports"]]
    assert [str(port_of(config.listen))] * 2 in [p[-2:] for p in published]
    assert urlparse(config.public_url).port == port_of(config.listen)


def test_prometheus_scrapes_every_service_metrics_port() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in prometheus["scrape_configs"]
    }
    for name in SERVICES:
        port = service_config(name).metrics.port
        assert targets[f"tcxhooks-{name}"] == [f"{name}:{port}"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in SERVICES_OF["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES_OF["prometheus"]["command"]


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboards() -> None:
    mounts = dict(v.split(":")[:2] for v in SERVICES_OF["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text())
    (source,) = datasources["datasources"]
    url = urlparse(source["url"])
    assert source["type"] == "prometheus" and url.hostname == "prometheus" and url.port == 9090
    assert any(p.endswith(":9090") for p in SERVICES_OF["prometheus"]["ports"])
    providers = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/tcxhooks.yaml").read_text())
    (provider,) = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert list((ROOT / "deploy/grafana/dashboards").glob("*.json"))


def test_restart_policies_and_healthchecks() -> None:
    for name, service in SERVICES_OF.items():
        if name == "minio-init":
            assert service["restart"] == "on-failure" and service["healthcheck"] == {"disable": True}
            continue
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        if name in SERVICES:
            assert "test" not in check, f"{name}: uses the image's HEALTHCHECK"
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_wait_for_health_or_completion() -> None:
    for name, service in SERVICES_OF.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES_OF, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert SERVICES_OF[target].get("healthcheck", {}).get("disable") is not True
            else:
                assert rule["condition"] == "service_completed_successfully" and target == "minio-init"


def test_volumes_are_declared_and_bind_mounts_exist() -> None:
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES_OF.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                used.add(source)
    assert used == declared


def test_bucket_init_gives_media_a_user_of_its_own_limited_to_its_bucket() -> None:
    """Runs minio-init's command (with the image's TCXH_CONFIG) against a MinIO stand-in, twice: the
    root user creates the bucket, the policy and media's user; media's keys are not the root's."""
    service = SERVICES_OF["minio-init"]
    assert service["depends_on"] == {"minio": {"condition": "service_healthy"}}
    command = [
        sys.executable if part == "python" else part.replace(IMAGE_CONFIG, str(INI))
        for part in service["entrypoint"] + service["command"]
    ]
    root = environment(SERVICES_OF["minio"])
    media = service_config("media").recordings
    assert media.s3_access_key != root["MINIO_ROOT_USER"] and media.s3_secret_key != root["MINIO_ROOT_PASSWORD"]
    assert not set(root.values()) & set(environment(SERVICES_OF["media"]).values()), "media holds no root credential"
    with FakeMinio(root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"]) as minio:
        env = {
            **os.environ,
            **environment(service),
            "TCXH_RECORDINGS_S3_ENDPOINT": minio.endpoint,
            "TCXH_RECORDINGS_S3_SECURE": "false",
        }
        for _ in range(2):
            reply = subprocess.run(command, env=env, capture_output=True, timeout=60)
            assert reply.returncode == 0, reply.stderr.decode()[-2000:]
        assert minio.signed_by == {root["MINIO_ROOT_USER"]}
        assert minio.buckets == {media.s3_bucket}
        assert minio.users == {media.s3_access_key: media.s3_secret_key}
        assert minio.attached == {media.s3_access_key: {POLICY}}
        assert minio.policies == {POLICY: media_policy(media.s3_bucket)}
    for statement in media_policy(media.s3_bucket)["Statement"]:
        assert statement["Effect"] == "Allow" and "*" not in "".join(statement["Action"])
        assert all(
            r in (f"arn:aws:s3:::{media.s3_bucket}", f"arn:aws:s3:::{media.s3_bucket}/*") for r in statement["Resource"]
        )


def test_bucket_init_refuses_to_make_media_the_root_user() -> None:
    service = SERVICES_OF["minio-init"]
    root = environment(SERVICES_OF["minio"])
    env = {**os.environ, **environment(service), "TCXH_RECORDINGS_S3_ACCESS_KEY": root["MINIO_ROOT_USER"]}
    command = [sys.executable, "-m", "tcxhooks.media.minio_setup", "-c", str(INI)]
    reply = subprocess.run(command, env=env, capture_output=True, timeout=60, text=True)
    assert reply.returncode == 2 and "give media a user of its own" in reply.stderr


def test_secrets_have_no_default_values() -> None:
    """A secret is required (`${X:?…}`) or empty by default (`${X:-}`), never a value baked into the file."""
    raw = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            secret = key in (
                "PGPASSWORD",
                "POSTGRES_PASSWORD",
                "MINIO_ROOT_PASSWORD",
                "GF_SECURITY_ADMIN_PASSWORD",
            ) or (key.startswith("TCXH_") and config_key(key).secret)
            if secret:
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*|:-)\}", str(value)), f"{name}: {key} = {value}"


def test_images_are_built_here_or_pinned_by_digest() -> None:
    for name, service in SERVICES_OF.items():
        if "build" in service:
            continue
        assert re.fullmatch(r"[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}", service["image"]), (
            f"{name}: {service['image']} is not pinned by digest"
        )
