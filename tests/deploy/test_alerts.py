"""Alerting rules: one set for compose's Prometheus (deploy/alerts.yml) and the Prometheus Operator
(k8s PrometheusRule), well-formed, loaded by compose's Prometheus, and naming only metrics and labels the
running services really serve; the commands they tell an admin to run exist."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tcxhooks.cli import COMMANDS

from .cluster import find
from .composefile import load_compose, read_env_file
from .conftest import ROOT, Live
from .kustomize import build
from .promql import declared_labels, grouping_labels, labels_of, metric_names, metrics_modules, served_names

RULES = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text(encoding="utf-8"))
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"]]
RENDERS = sorted(
    str(p.parent.relative_to(ROOT / "k8s"))
    for p in (ROOT / "k8s").glob("**/kustomization.yaml")
    if p.parent.parent.name in ("overlays", "tests")
)


def test_compose_prometheus_loads_the_rule_file() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    compose = load_compose(ROOT / "compose.yaml", read_env_file(ROOT / "deploy" / "env.example"))
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/alerts.yml"] in prometheus["rule_files"]


@pytest.mark.parametrize("name", RENDERS)
def test_kubernetes_carries_the_same_rules(name: str) -> None:
    (rule,) = find(build(ROOT / "k8s" / name), "PrometheusRule")
    assert rule["spec"]["groups"] == RULES["groups"]


def test_rules_are_well_formed() -> None:
    assert ALERTS
    names = [rule["alert"] for rule in ALERTS]
    assert len(names) == len(set(names))
    for rule in ALERTS:
        assert re.fullmatch(r"Tcxhooks[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert {"summary", "description"} <= set(rule["annotations"])
        labelled = set(re.findall(r"\$labels\.(\w+)", " ".join(rule["annotations"].values())))
        assert labelled <= grouping_labels(rule["expr"]), f"{rule['alert']}: {labelled} is aggregated away"


def test_commands_in_the_rules_exist() -> None:
    commands = {c for rule in ALERTS for c in re.findall(r"\btcxhooks (\w+)", rule["annotations"]["description"])}
    assert commands
    assert commands <= set(COMMANDS)


def _served(live: Live, service: str) -> set[str]:
    return served_names(live.scrape(service))


def test_rules_name_metrics_and_labels_the_services_serve(live: Live) -> None:
    declared = declared_labels(metrics_modules(ROOT))
    for rule in ALERTS:
        names = metric_names(rule["expr"])
        service = next(iter({n.split("_")[1] for n in names}))
        if service not in live.metrics and service not in live.skipped:
            service = "dispatcher"  # a platform metric (tcxhooks_grpc_*): every service serves it
        if service in live.skipped:
            pytest.skip(f"{service} not started: {live.skipped[service]}")
        assert names <= _served(live, service), rule["alert"]
        allowed: set[Any] = set().union(*(labels_of(declared, n) for n in names))
        assert grouping_labels(rule["expr"]) <= allowed, rule["alert"]
