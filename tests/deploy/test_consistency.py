"""The image, compose.yaml and k8s/ run the same thing: the same commands, config path, user, ports
and health checks, and configs that differ only where the platforms must (hosts, URLs, secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcxhooks.media.config import MediaSettings
from tcxhooks.platform.health import LIVENESS
from tcxhooks.product import SERVICES
from tests.helpers.config import ServiceConfig

from .cluster import pod_spec
from .conftest import ROOT
from .dockerfile import parse_dockerfile
from .test_compose import IMAGE_CONFIG, SERVICES_OF
from .test_compose import service_config as compose_config
from .test_k8s import container, deployment, render
from .test_k8s import service_config as k8s_config

RUNTIME = parse_dockerfile(ROOT / "Dockerfile")[-1]
# Keys whose values must differ between one Docker host and a cluster (section, key); secrets
# (shown as *** once set) come from each platform's own store and are not compared.
PLATFORM_KEYS = {("services", name) for name in SERVICES} | {
    ("store", "url"),
    ("recordings", "public_url"),
    ("recordings", "s3_endpoint"),
    ("recordings", "s3_secure"),
}


def ports(config: ServiceConfig) -> dict[str, str]:
    found = {name: getattr(config.services, name).rpartition(":")[2] for name in SERVICES}
    found["metrics"] = str(config.metrics.port)
    if isinstance(config.settings, MediaSettings):
        found["links"] = config.recordings.listen.rpartition(":")[2]
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_compose_and_kubernetes_run_the_same_command(service: str) -> None:
    k8s = container(deployment(render("overlays/prod"), service))
    assert SERVICES_OF[service]["command"] == k8s["args"]
    (entrypoint,) = RUNTIME.instructions("ENTRYPOINT")
    assert "entrypoint" not in SERVICES_OF[service] and "command" not in k8s, entrypoint.exec_form()


@pytest.mark.parametrize("service", SERVICES)
def test_same_config_path_user_and_ports(service: str, tmp_path: Path) -> None:
    workload = deployment(render("overlays/prod"), service)
    (mount,) = [m for m in container(workload)["volumeMounts"] if m["name"] == "config"]
    assert f"{mount['mountPath']}/{Path(IMAGE_CONFIG).name}" == IMAGE_CONFIG
    assert any(v.endswith(f":{IMAGE_CONFIG}:ro") for v in SERVICES_OF[service]["volumes"])
    (user,) = RUNTIME.instructions("USER")
    uid, gid = (int(x) for x in user.args.split(":"))
    context = pod_spec(workload)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert "user" not in SERVICES_OF[service]
    assert ports(compose_config(service)) == ports(k8s_config(render("overlays/prod"), service, tmp_path))


@pytest.mark.parametrize("service", SERVICES)
def test_configs_differ_only_where_the_platform_does(service: str, tmp_path: Path) -> None:
    compose = compose_config(service).redacted()
    k8s = k8s_config(render("overlays/prod"), service, tmp_path).redacted()
    assert compose.keys() == k8s.keys()
    differing = {
        (section, key)
        for section in compose
        for key in compose[section]
        if compose[section][key] != k8s[section][key] and "***" not in (compose[section][key], k8s[section][key])
    }
    assert differing <= PLATFORM_KEYS, sorted(differing - PLATFORM_KEYS)


def test_docker_and_kubernetes_probe_the_same_health_services() -> None:
    (check,) = RUNTIME.instructions("HEALTHCHECK")
    assert check.exec_form()[-2:] == ["tcxhooks", "health"], 'the image checks readiness (service "")'
    for service in SERVICES:
        k8s = container(deployment(render("overlays/prod"), service))
        assert "service" not in k8s["readinessProbe"]["grpc"]
        assert k8s["livenessProbe"]["grpc"]["service"] == LIVENESS
