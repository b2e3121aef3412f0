"""k8s/: every overlay and test combination rendered, every object validated against the Kubernetes
schemas (the Prometheus Operator's ServiceMonitor and PrometheusRule against their structure), and the
manifests cross-checked against the code: commands, the config each container would load, ports, probes,
secrets, network reachability."""

from __future__ import annotations

import functools
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml

import tcxhooks
from tcxhooks.cli import COMMANDS
from tcxhooks.media.links import PATH_PREFIX
from tcxhooks.platform.health import LIVENESS
from tcxhooks.product import SERVICES
from tests.helpers.config import ServiceConfig

from .cluster import (
    Obj,
    Peer,
    egress_allowed,
    find,
    generated,
    load_mounted,
    matches,
    mount,
    one,
    pod_labels,
    pod_spec,
    quantity,
    secret_values,
)
from .conftest import ROOT
from .dockerfile import parse_dockerfile
from .envmap import check_env_names
from .kustomize import KustomizeError, build, strategic_merge

K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.30.0"
RENDERS = sorted(
    str(p.parent.relative_to(K8S))
    for p in K8S.glob("**/kustomization.yaml")
    if p.parent.parent.name in ("overlays", "tests")
)
IMAGE_CONFIG = (
    next(i.args for i in parse_dockerfile(ROOT / "Dockerfile")[-1].instructions("ENV") if "TCXH_CONFIG=" in i.args)
    .split("TCXH_CONFIG=")[1]
    .split()[0]
)
TEMPLATE = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text(encoding="utf-8"))
# an image pinned by digest, its tag kept for reading: name:tag@sha256:<64 hex>
PINNED = re.compile(r"[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}")
HEALTH_PORT = 9470  # [services] health_port in compose and Kubernetes: the probes' plaintext port
# Example values for the Secret when an overlay leaves it to the operator (the optional keys left out).
OPTIONAL_SECRETS = {"webhook-secret", "yandex-api-key"}
EXAMPLE_SECRETS = {key: f"example-{key}" for key in TEMPLATE["stringData"] if key not in OPTIONAL_SECRETS}
# Addresses standing for each external dependency inside the network policies' placeholder CIDRs.
PBX, CRM, S3, YANDEX = "203.0.113.10", "198.51.100.7", "192.0.2.5", "203.0.113.200"
PUBLIC_LINKS = "198.18.0.10"  # where the Ingress publishes media's links
DNS_1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION = r"^(0|([0-9]+(ms|s|m|h))+)$"
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": DNS_1123, "maxLength": 63},
                "namespace": {"type": "string", "pattern": DNS_1123},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}


PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": SERVICE_MONITOR_SCHEMA["properties"]["metadata"],
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {"type": "string", "pattern": DURATION},
                                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}
OPERATOR_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PrometheusRule": PROMETHEUS_RULE_SCHEMA}


@functools.cache
def render(name: str) -> list[Obj]:
    return build(K8S / name)


def deployment(objects: list[Obj], service: str) -> Obj:
    return one(objects, "Deployment", f"tcxhooks-{service}")


def container(workload: Obj) -> Obj:
    (only,) = pod_spec(workload)["containers"]
    return only  # type: ignore[no-any-return]


def service_config(objects: list[Obj], service: str, folder: Path) -> ServiceConfig:
    workload = deployment(objects, service)
    mounted = mount(objects, workload, container(workload), EXAMPLE_SECRETS)
    return load_mounted(mounted, IMAGE_CONFIG, folder, service)


def port_named(ports: list[Obj], name: str) -> int:
    (port,) = [p for p in ports if p["name"] == name]
    return int(port.get("containerPort", port.get("port")))


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


# --- the renderer itself --------------------------------------------------------------------------


def test_strategic_merge_merges_named_lists_and_replaces_others() -> None:
    base = {
        "spec": {
            "containers": [
                {"name": "a", "args": ["x", "y"], "env": [{"name": "E", "value": "1"}]},
                {"name": "b", "image": "i"},
            ],
            "drop": 1,
        }
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "args": ["z"], "env": [{"name": "F", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
            ],
            "drop": None,
        }
    }
    assert strategic_merge(base, patch) == {
        "spec": {
            "containers": [
                {"name": "a", "args": ["z"], "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]}
            ]
        }
    }


def test_renderer_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\n", encoding="utf-8"
    )
    with pytest.raises(KustomizeError, match="namePrefix"):
        build(tmp_path)
    outside = tmp_path / "overlay"
    outside.mkdir()
    (outside / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../x.yaml\n",
        encoding="utf-8",
    )
    (tmp_path / "x.yaml").write_text("kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n", encoding="utf-8")
    with pytest.raises(KustomizeError, match="not in or below"):
        build(outside)


def test_generated_names_carry_a_content_hash_and_references_follow() -> None:
    base, dev = render("tests/base-only"), render("overlays/dev")
    base_env = generated(base, "ConfigMap", "tcxhooks-env")
    dev_env = generated(dev, "ConfigMap", "tcxhooks-env")
    assert base_env and dev_env and base_env["metadata"]["name"] != dev_env["metadata"]["name"]
    ref = container(deployment(dev, "media"))["envFrom"][0]["configMapRef"]["name"]
    assert ref == dev_env["metadata"]["name"]


# --- every render ---------------------------------------------------------------------------------


def test_every_overlay_and_component_is_rendered() -> None:
    assert {"overlays/dev", "overlays/prod"} <= set(RENDERS)
    used = set()
    for name in RENDERS:
        spec = yaml.safe_load((K8S / name / "kustomization.yaml").read_text(encoding="utf-8"))
        used |= {Path(c).name for c in spec.get("components", [])}
    assert used == {p.name for p in (K8S / "components").iterdir() if p.is_dir()}


@pytest.mark.parametrize("name", RENDERS)
def test_objects_are_valid_kubernetes(name: str) -> None:
    problems = []
    for obj in render(name):
        if obj["apiVersion"] == "monitoring.coreos.com/v1":
            jsonschema.validate(obj, OPERATOR_SCHEMAS[obj["kind"]])
            for endpoint in obj["spec"].get("endpoints", []):
                assert quantity(endpoint["scrapeTimeout"].rstrip("s")) <= quantity(endpoint["interval"].rstrip("s"))
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", RENDERS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_its_command_with_a_config_that_loads(
    name: str, service: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    objects = render(name)
    main = container(deployment(objects, service))
    assert main["args"] == [service, "-c", IMAGE_CONFIG] and main["args"][0] in COMMANDS
    assert "command" not in main, "the image's ENTRYPOINT (tcxhooks) runs the args"
    check_env_names(
        [e["name"] for e in main["env"]]
        + list(one(objects, "ConfigMap", main["envFrom"][0]["configMapRef"]["name"])["data"])
    )
    with caplog.at_level(logging.WARNING, logger="tcxhooks.platform.config"):
        config = service_config(objects, service, tmp_path)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    store = urlparse(config.store.url)
    assert store.scheme == "postgresql" and store.password is None, "the password comes from PGPASSWORD"
    assert config.log.format == "json"


@pytest.mark.parametrize("name", RENDERS)
@pytest.mark.parametrize("service", SERVICES)
def test_ports_probes_and_service_agree_with_the_config(name: str, service: str, tmp_path: Path) -> None:
    objects = render(name)
    config = service_config(objects, service, tmp_path)
    workload = deployment(objects, service)
    main = container(workload)
    host, _, port = getattr(config.services, service).rpartition(":")
    assert host == f"tcxhooks-{service}", "peers find each other by Service name"
    svc = one(objects, "Service", host)
    assert matches(svc["spec"]["selector"], pod_labels(workload))
    assert port_named(svc["spec"]["ports"], "grpc") == port_named(main["ports"], "grpc") == int(port)
    assert port_named(svc["spec"]["ports"], "metrics") == port_named(main["ports"], "metrics") == config.metrics.port
    for peer in SERVICES:
        assert getattr(config.services, peer).rpartition(":")[0] == f"tcxhooks-{peer}"
    # the probes ask the plaintext health port, so they keep working when gRPC speaks TLS
    health = port_named(main["ports"], "health")
    assert config.services.health_port == health == HEALTH_PORT and health != int(port)
    assert main["readinessProbe"]["grpc"] == {"port": health}, 'readiness is service ""'
    assert main["livenessProbe"]["grpc"] == {"port": health, "service": LIVENESS}
    assert main["startupProbe"]["grpc"] == {"port": health, "service": LIVENESS}
    if service == "media":
        assert (
            port_named(main["ports"], "http")
            == port_named(svc["spec"]["ports"], "http")
            == port_of(config.recordings.listen)
        )
        assert not config.recordings.listen.startswith("127.")


@pytest.mark.parametrize("name", RENDERS)
@pytest.mark.parametrize("service", SERVICES)
def test_deployment_is_hardened_and_bounded(name: str, service: str) -> None:
    objects = render(name)
    workload = deployment(objects, service)
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    account = one(objects, "ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    main = container(workload)
    security = main["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert {"/tmp", "/var/lib/tcxhooks"} <= mounts, "writable scratch space on a read-only root"
    resources = main["resources"]
    for kind in ("cpu", "memory"):
        assert quantity(resources["requests"][kind]) <= quantity(resources["limits"][kind]), kind
    if service == "monitor":
        # Only the lease holder is Ready: a rolling update or a disruption budget would wait forever.
        assert workload["spec"]["strategy"] == {"type": "Recreate"}
        assert not find(objects, "PodDisruptionBudget", "tcxhooks-monitor")
    else:
        assert workload["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        pdb = one(objects, "PodDisruptionBudget", f"tcxhooks-{service}")
        assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels(workload))
    assert spec["terminationGracePeriodSeconds"] >= 30


@pytest.mark.parametrize("name", RENDERS)
def test_secrets_are_keys_of_the_template_secret_and_only_the_optional_ones_may_be_absent(name: str) -> None:
    """Secrets are mounted files, but the two optional ones: variables the kubelet leaves unset when the
    Secret lacks their key, so an unsigned endpoint or an analytics without an API key needs no empty value
    (the services refuse empty secret files)."""
    objects = render(name)
    template_keys = set(TEMPLATE["stringData"])
    used: set[str] = set()
    for workload in find(objects, "Deployment") + find(objects, "StatefulSet") + find(objects, "Job"):
        for each in pod_spec(workload)["containers"]:
            mounted = mount(objects, workload, each, EXAMPLE_SECRETS)
            used |= mounted.secret_keys
            for env in each.get("env", []):
                if env["name"].endswith("_FILE"):
                    assert env["value"] in mounted.files, f"{env['name']} names no mounted file"
                ref = env.get("valueFrom", {}).get("secretKeyRef", {})
                assert bool(ref.get("optional")) == (ref.get("key") in OPTIONAL_SECRETS), env["name"]
    if not find(objects, "Deployment", "tcxhooks-minio"):  # MinIO's root user serves components/local-minio only
        template_keys -= {"minio-root-user", "minio-root-password"}
    assert used == template_keys, f"template keys unused: {template_keys - used}; unknown: {used - template_keys}"
    for secret in find(objects, "Secret"):
        values = secret_values(secret)
        assert set(TEMPLATE["stringData"]) - OPTIONAL_SECRETS <= set(values) <= set(TEMPLATE["stringData"])
        assert all(values.values()), f"empty values in {secret['metadata']['name']}"


def test_the_secret_template_invites_no_empty_value() -> None:
    text = (K8S / "base" / "secret.template.yaml").read_text(encoding="utf-8")
    assert "leave a value empty" not in text and "never set empty" in text
    for key in OPTIONAL_SECRETS:
        assert re.search(rf"^  {key}: .*# optional:", text, re.M), key


@pytest.mark.parametrize("name", RENDERS)
def test_service_monitor_scrapes_the_metrics_port_of_every_service(name: str) -> None:
    objects = render(name)
    (monitor,) = find(objects, "ServiceMonitor")
    selected = [
        s
        for s in find(objects, "Service")
        if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert {s["metadata"]["name"] for s in selected} == {f"tcxhooks-{s}" for s in SERVICES}
    for svc in selected:
        for endpoint in monitor["spec"]["endpoints"]:
            assert port_named(svc["spec"]["ports"], endpoint["port"])


@pytest.mark.parametrize("name", RENDERS)
def test_ingress_serves_the_links_at_the_public_url(name: str, tmp_path: Path) -> None:
    objects = render(name)
    public = urlparse(service_config(objects, "media", tmp_path).recordings.public_url)
    (ingress,) = find(objects, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == public.hostname
    (path,) = rule["http"]["paths"]
    assert path["path"] == public.path + PATH_PREFIX and path["pathType"] == "Prefix"
    backend = path["backend"]["service"]
    assert port_named(one(objects, "Service", backend["name"])["spec"]["ports"], backend["port"]["name"])
    assert backend["name"] == "tcxhooks-media"
    for tls in ingress["spec"].get("tls", []):
        assert rule["host"] in tls["hosts"] and public.scheme == "https"


@pytest.mark.parametrize("name", RENDERS)
def test_grafana_dashboards_configmap_holds_the_repository_dashboards(name: str) -> None:
    (maps,) = [
        c for c in find(render(name), "ConfigMap") if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    files = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")}
    assert maps["data"] == files


@pytest.mark.parametrize("name", [n for n in RENDERS if find(render(n), "NetworkPolicy")])
def test_network_policies_give_each_dependency_to_one_service(name: str, tmp_path: Path) -> None:
    objects = render(name)
    owners = {"monitor": (PBX, 5001), "dispatcher": (CRM, 443), "media": (S3, 443), "analytics": (YANDEX, 443)}
    for service in SERVICES:
        labels = pod_labels(deployment(objects, service))
        for owner, (ip, port) in owners.items():
            assert egress_allowed(objects, labels, Peer(ip=ip), port) == (owner == service), (
                f"{service} → {owner}'s {ip}:{port}"
            )
        assert egress_allowed(objects, labels, Peer(ip="192.0.2.77"), 5432), "the store"
        assert not egress_allowed(objects, labels, Peer(ip="192.0.2.77"), 22)
        config = service_config(objects, service, tmp_path / service)
        for peer in SERVICES:
            peer_labels = tuple(pod_labels(deployment(objects, peer)).items())
            assert egress_allowed(objects, labels, Peer(labels=peer_labels), port_of(getattr(config.services, peer)))
        for store in find(objects, "StatefulSet", "tcxhooks-postgres"):
            assert egress_allowed(objects, labels, Peer(labels=tuple(pod_labels(store).items())), 5432)
        for minio in find(objects, "Deployment", "tcxhooks-minio"):
            reach = egress_allowed(objects, labels, Peer(labels=tuple(pod_labels(minio).items())), 9000)
            assert reach == (service == "media"), f"{service} → local MinIO"


@pytest.mark.parametrize("name", [n for n in RENDERS if find(render(n), "NetworkPolicy")])
def test_analytics_reads_recordings_from_media_over_grpc_not_through_links_or_storage(
    name: str, tmp_path: Path
) -> None:
    objects = render(name)
    analytics = pod_labels(deployment(objects, "analytics"))
    media = tuple(pod_labels(deployment(objects, "media")).items())
    config = service_config(objects, "media", tmp_path / "media")
    assert egress_allowed(objects, analytics, Peer(labels=media), port_of(config.services.media))
    assert not egress_allowed(objects, analytics, Peer(labels=media), port_of(config.recordings.listen))
    for address in (S3, PUBLIC_LINKS):  # the bucket, and the Ingress in front of the links
        for port in (80, 443, 9000):
            assert not egress_allowed(objects, analytics, Peer(ip=address), port), f"analytics → {address}:{port}"
    for minio in find(objects, "Deployment", "tcxhooks-minio"):
        assert not egress_allowed(objects, analytics, Peer(labels=tuple(pod_labels(minio).items())), 9000)


# --- the overlays ---------------------------------------------------------------------------------


def test_prod_runs_replicas_of_the_released_image_behind_policies() -> None:
    objects = render("overlays/prod")
    replicas = {s: deployment(objects, s)["spec"]["replicas"] for s in SERVICES}
    assert replicas["monitor"] == 2, "one active monitor and one standby"
    assert all(count >= 2 for count in replicas.values())
    for service in SERVICES:
        assert re.fullmatch(
            r"registry\.example\.com/tcxhooks@sha256:[0-9a-f]{64}", container(deployment(objects, service))["image"]
        ), "the released image, by digest"
    assert not find(objects, "Secret"), "production secrets are not kept in the repository"
    assert find(objects, "NetworkPolicy")
    assert all(o["metadata"].get("namespace") == "tcxhooks" for o in objects)
    base_media = container(deployment(render("tests/base-only"), "media"))["resources"]
    assert quantity(container(deployment(objects, "media"))["resources"]["limits"]["cpu"]) > quantity(
        base_media["limits"]["cpu"]
    )


def test_base_image_tag_is_the_package_version() -> None:
    for service in SERVICES:
        assert container(deployment(render("tests/base-only"), service))["image"] == f"tcxhooks:{tcxhooks.__version__}"


def test_dev_uses_in_cluster_postgres_minio_and_the_simulator(tmp_path: Path) -> None:
    objects = render("overlays/dev")
    postgres = one(objects, "StatefulSet", "tcxhooks-postgres")
    minio = one(objects, "Deployment", "tcxhooks-minio")
    for service in SERVICES:
        config = service_config(objects, service, tmp_path / service)
        store = urlparse(config.store.url)
        pg_service = one(objects, "Service", store.hostname or "")
        assert matches(pg_service["spec"]["selector"], pod_labels(postgres))
        assert store.port == port_named(pg_service["spec"]["ports"], "postgres")
        pg_env = {e["name"]: e for e in container(postgres)["env"]}
        assert store.username == pg_env["POSTGRES_USER"]["value"] and store.path == "/" + pg_env["POSTGRES_DB"]["value"]
        app_env = {e["name"]: e for e in container(deployment(objects, service))["env"]}
        assert app_env["PGPASSWORD"]["valueFrom"] == pg_env["POSTGRES_PASSWORD"]["valueFrom"]
    media = service_config(objects, "media", tmp_path / "m")
    host, _, port = media.recordings.s3_endpoint.rpartition(":")
    s3_service = one(objects, "Service", host)
    assert matches(s3_service["spec"]["selector"], pod_labels(minio)) and int(port) == port_named(
        s3_service["spec"]["ports"], "s3"
    )
    assert media.recordings.s3_secure is False
    minio_env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container(minio)["env"]}
    assert (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"]) == (
        "minio-root-user",
        "minio-root-password",
    )


def test_dev_bucket_job_runs_compose_minio_init_with_media_s3_config(tmp_path: Path) -> None:
    objects = render("overlays/dev")
    job = one(objects, "Job", "tcxhooks-minio-bucket")
    main = container(job)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]["minio-init"]
    assert main["command"] == compose["entrypoint"] + compose["command"]
    config = load_mounted(mount(objects, job, main, EXAMPLE_SECRETS), IMAGE_CONFIG, tmp_path / "job", "media")
    media = service_config(objects, "media", tmp_path / "media")
    s3_keys = ("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket", "s3_secure", "s3_region")
    assert [getattr(config.recordings, k) for k in s3_keys] == [getattr(media.recordings, k) for k in s3_keys]


def test_dev_simulator_is_the_monitor_pbx(tmp_path: Path) -> None:
    objects = render("overlays/dev")
    sim = one(objects, "Deployment", "tcxhooks-sim")
    main = container(sim)
    assert main["args"][0] == "sim" and "sim" in COMMANDS
    usage = subprocess.run(
        [sys.executable, "-m", "tcxhooks", "sim", "--help"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 0, usage.stderr
    for flag in (a for a in main["args"] if a.startswith("--")):
        assert flag in usage.stdout, f"tcxhooks sim has no {flag}"
    config = service_config(objects, "monitor", tmp_path)
    pbx = urlparse(config.pbx.url)
    sim_service = one(objects, "Service", pbx.hostname or "")
    assert matches(sim_service["spec"]["selector"], pod_labels(sim))
    assert (
        pbx.port
        == port_named(sim_service["spec"]["ports"], "http")
        == int(main["args"][main["args"].index("--port") + 1])
    )
    assert main["args"][main["args"].index("--client-id") + 1] == config.pbx.client_id
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in main["env"]}
    assert main["args"][main["args"].index("--client-secret") + 1] == "$(PBX_CLIENT_SECRET)"
    assert secret_env["PBX_CLIENT_SECRET"] == "pbx-client-secret"
    assert (
        config.pbx.client_secret
        == mount(
            objects, deployment(objects, "monitor"), container(deployment(objects, "monitor")), EXAMPLE_SECRETS
        ).files["/run/secrets/tcxhooks/pbx-client-secret"]
    )


@pytest.mark.parametrize("name", RENDERS)
def test_images_are_pinned_by_digest_but_our_local_development_build(name: str) -> None:
    """A tag can be moved to other contents, a digest cannot: every image but ours is pinned; ours is
    pinned in production (a placeholder to replace) and a local build (`kind load`) in development."""
    for workload in find(render(name), "Deployment") + find(render(name), "StatefulSet") + find(render(name), "Job"):
        for each in pod_spec(workload)["containers"] + pod_spec(workload).get("initContainers", []):
            image = each["image"]
            if image.partition("@")[0].partition(":")[0].rpartition("/")[2] == "tcxhooks":
                if name == "overlays/prod":
                    assert re.fullmatch(r"registry\.example\.com/tcxhooks@sha256:[0-9a-f]{64}", image), image
                continue
            assert PINNED.fullmatch(image), f"{workload['metadata']['name']}: {image} is not pinned by digest"
