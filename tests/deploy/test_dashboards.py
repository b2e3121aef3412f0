"""Grafana dashboards: in sync with their generator, well-formed, covering what operators need, and
every query naming metrics that the running services really serve on /metrics."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest

from tcxhooks.product import SERVICES

from .conftest import ROOT, Live
from .promql import declared_labels, grouping_labels, labels_of, metric_names, metrics_modules, served_names

DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
SHARED = {
    "grpc_server_handled_total",
    "grpc_client_handled_total",
    "grpc_server_handling_seconds_bucket",
    "grpc_server_handling_seconds_sum",
    "grpc_server_handling_seconds_count",
    "tcxhooks_build_info",
    "tcxhooks_dependency_up",
}
# What issue 9 asks the dashboards to show, by the metric showing it.
REQUIRED = {
    "event rate by type": "tcxhooks_monitor_events_emitted_total",
    "delivery latency percentiles": "tcxhooks_dispatcher_delivery_latency_seconds_bucket",
    "queue depth per endpoint": "tcxhooks_dispatcher_queue_depth",
    "oldest pending age per endpoint": "tcxhooks_dispatcher_oldest_pending_age_seconds",
    "failures": "tcxhooks_dispatcher_attempts_total",
    "dead deliveries": "tcxhooks_dispatcher_dead_total",
    "active calls": "tcxhooks_monitor_active_calls",
    "WS reconnects": "tcxhooks_monitor_ws_reconnects_total",
    "transcoding throughput": "tcxhooks_media_files_total",
    "analytics throughput": "tcxhooks_analytics_job_seconds_count",
    "call graph against the PBX call log": "tcxhooks_monitor_reconcile_disagreements_total",
}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", ROOT / "deploy" / "grafana" / "build_dashboards.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def queried() -> set[str]:
    return {
        name
        for d in dashboards().values()
        for p in d["panels"]
        for t in p["targets"]
        for name in metric_names(t["expr"])
    }


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, grpc_method) (rate(a_bucket{code!="OK", x=~"y|z"}[$__rate_interval])))'
        " / on (job) group_left sum without (instance) (b_total offset 5m) > bool 1 and max(c)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_json_files_match_the_generator() -> None:
    module = generator()
    assert {f"{uid}.json" for uid in module.DASHBOARDS} == set(dashboards())
    for uid in module.DASHBOARDS:
        assert (DASHBOARDS / f"{uid}.json").read_text(encoding="utf-8") == module.text(uid), (
            f"{uid}.json is stale: run python deploy/grafana/build_dashboards.py"
        )


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for name, board in dashboards().items():
        assert board["uid"] not in uids and len(board["uid"]) <= 40
        uids.add(board["uid"])
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert metric_names(target["expr"]), f"{panel['title']}: {target['expr']} names no metric"
                assert target["expr"].count("(") == target["expr"].count(")")


def test_dashboards_show_what_operators_need() -> None:
    names = queried()
    missing = {what: metric for what, metric in REQUIRED.items() if metric not in names}
    assert not missing


def test_panels_use_labels_their_metrics_have() -> None:
    declared = declared_labels(metrics_modules(ROOT))
    for board in dashboards().values():
        for panel in board["panels"]:
            for target in panel["targets"]:
                allowed = {"job", "instance"}.union(*(labels_of(declared, n) for n in metric_names(target["expr"])))
                used = grouping_labels(target["expr"])
                assert used <= allowed, f"{panel['title']}: no label {sorted(used - allowed)} on its metric"
                legend = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
                assert legend <= used, f"{panel['title']}: legend {sorted(legend - used)} is aggregated away"


def test_every_queried_metric_belongs_to_a_service_or_the_platform() -> None:
    for name in queried():
        assert name in SHARED or any(name.startswith(f"tcxhooks_{s}_") for s in SERVICES), name


@pytest.mark.parametrize("service", SERVICES)
def test_queried_metrics_are_served_by_the_running_service(service: str, live: Live) -> None:
    if service in live.skipped:
        pytest.skip(f"{service} not started: {live.skipped[service]}")
    served = served_names(live.scrape(service))
    own = {n for n in queried() if n.startswith(f"tcxhooks_{service}_")}
    assert own, f"no panel shows {service}"
    assert not own - served, f"{service} does not serve {sorted(own - served)}"
    assert not SHARED - served, f"{service} lacks the platform metrics {sorted(SHARED - served)}"
