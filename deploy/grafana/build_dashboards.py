"""Writes the Grafana dashboards of deploy/grafana/dashboards/ (run after editing the panels below).

    python deploy/grafana/build_dashboards.py

Each panel is one PromQL query over metrics the services export (platform/metrics.py and
services/<name>/metrics.py); tests/deploy/test_dashboards.py checks every metric name against the
/metrics of the running services and that the JSON files match this script's output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
WIDTH = 24


def query(expr: str, legend: str = "") -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend}


def panel(
    title: str,
    kind: str,
    queries: list[dict[str, Any]],
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    description: str = "",
) -> dict[str, Any]:
    return {
        "title": title,
        "type": kind,
        "queries": queries,
        "unit": unit,
        "width": width,
        "height": height,
        "description": description,
    }


def quantiles(metric: str, by: str = "", legend_prefix: str = "") -> list[dict[str, Any]]:
    group = f"le, {by}" if by else "le"
    label = "{{" + by + "}} " if by else ""
    return [
        query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"{legend_prefix}{label}p{int(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


OVERVIEW = [
    panel(
        "Running versions",
        "table",
        [query("max by (service, version) (tcxhooks_build_info)")],
        width=8,
        description="One row per service and version serving /metrics.",
    ),
    panel(
        "Dependencies",
        "state-timeline",
        [query("min by (service, dependency) (tcxhooks_dependency_up)", "{{service}} → {{dependency}}")],
        width=16,
        description="1 while a health check of the dependency passes (store, PBX, S3, peers).",
    ),
    panel(
        "gRPC requests by service and code",
        "timeseries",
        [
            query(
                f"sum by (grpc_service, grpc_code) (rate(grpc_server_handled_total[{RATE}]))",
                "{{grpc_service}} {{grpc_code}}",
            )
        ],
        unit="reqps",
    ),
    panel(
        "gRPC errors (not OK)",
        "timeseries",
        [
            query(
                f'sum by (grpc_service, grpc_method, grpc_code) (rate(grpc_server_handled_total{{grpc_code!="OK"}}[{RATE}]))',
                "{{grpc_service}}/{{grpc_method}} {{grpc_code}}",
            )
        ],
        unit="reqps",
    ),
    panel(
        "gRPC latency p99 by method",
        "timeseries",
        [
            query(
                f"histogram_quantile(0.99, sum by (le, grpc_service, grpc_method) (rate(grpc_server_handling_seconds_bucket[{RATE}])))",
                "{{grpc_service}}/{{grpc_method}}",
            )
        ],
        unit="s",
    ),
    panel(
        "Calls to peer services by code",
        "timeseries",
        [
            query(
                f"sum by (grpc_service, grpc_code) (rate(grpc_client_handled_total[{RATE}]))",
                "{{grpc_service}} {{grpc_code}}",
            )
        ],
        unit="reqps",
        description="RPCs the services make to each other (monitor → dispatcher/media, media → analytics, …).",
    ),
]

CALLS = [
    panel(
        "Call events by type",
        "timeseries",
        [query(f"sum by (event) (rate(tcxhooks_monitor_events_emitted_total[{RATE}]))", "{{event}}")],
        unit="ops",
        description="Events the monitor emitted (ringing, answered, ended, …).",
    ),
    panel(
        "Status and directory events by type",
        "timeseries",
        [query(f"sum by (type) (rate(tcxhooks_monitor_status_changes_total[{RATE}]))", "{{type}}")],
        unit="ops",
    ),
    panel(
        "Active calls",
        "stat",
        [query("max(tcxhooks_monitor_active_calls)")],
        width=6,
        description="Calls held by the active monitor (a standby holds none).",
    ),
    panel(
        "Call Control WebSocket",
        "stat",
        [query("max(tcxhooks_monitor_ws_connected)")],
        width=6,
        description="1 while the active monitor's WebSocket to the PBX is open.",
    ),
    panel(
        "WebSocket reconnects",
        "timeseries",
        [query(f"sum by (outcome) (increase(tcxhooks_monitor_ws_reconnects_total[{RATE}]))", "{{outcome}}")],
        width=12,
    ),
    panel(
        "PBX tokens and Call Control resync",
        "timeseries",
        [
            query(f"sum by (outcome) (increase(tcxhooks_monitor_token_mints_total[{RATE}]))", "token {{outcome}}"),
            query(
                f"histogram_quantile(0.99, sum by (le) (rate(tcxhooks_monitor_resync_seconds_bucket[{RATE}])))",
                "resync p99 (s)",
            ),
        ],
    ),
    panel(
        "PBX request latency p99",
        "timeseries",
        [
            query(
                f"histogram_quantile(0.99, sum by (le, kind) (rate(tcxhooks_monitor_pbx_request_seconds_bucket[{RATE}])))",
                "{{kind}}",
            )
        ],
        unit="s",
    ),
    panel(
        "Call graph against the PBX call log",
        "timeseries",
        [
            query(f"sum by (outcome) (increase(tcxhooks_monitor_reconciled_calls_total[{RATE}]))", "{{outcome}}"),
            query(
                f"sum by (field) (increase(tcxhooks_monitor_reconcile_disagreements_total[{RATE}]))",
                "disagrees on {{field}}",
            ),
        ],
        description="Ended calls checked against the PBX call log (docs/3cx.md §4.7). A disagreement: send a "
        "trace (tcxhooks capture, docs/3cx.md §8).",
    ),
    panel(
        "Directory poll failures",
        "timeseries",
        [
            query(f"sum by (what) (increase(tcxhooks_monitor_status_poll_failures_total[{RATE}]))", "{{what}}"),
            query(
                f"sum(increase(tcxhooks_monitor_malformed_messages_total[{RATE}]))", "malformed Call Control messages"
            ),
            query(
                f"sum by (peer) (increase(tcxhooks_monitor_publish_retries_total[{RATE}]))",
                "hand-over retried to {{peer}}",
            ),
        ],
    ),
    panel(
        "Directory view",
        "timeseries",
        [
            query(
                "time() - max(tcxhooks_monitor_status_last_success_timestamp_seconds)",
                "since the last complete poll (s)",
            ),
            query(
                f"histogram_quantile(0.99, sum by (le) (rate(tcxhooks_monitor_status_poll_seconds_bucket[{RATE}])))",
                "poll p99 (s)",
            ),
            query("max(tcxhooks_monitor_status_extensions)", "extensions"),
        ],
    ),
    panel(
        "Events handed to the dispatcher",
        "timeseries",
        [
            query(f"sum by (outcome) (rate(tcxhooks_dispatcher_published_total[{RATE}]))", "published {{outcome}}"),
            query(f"sum(rate(tcxhooks_dispatcher_delivered_total[{RATE}]))", "delivered"),
            query(f"sum(rate(tcxhooks_dispatcher_pruned_total[{RATE}]))", "pruned"),
        ],
        unit="ops",
    ),
    panel(
        "Webhook delivery latency (publish → 2xx)",
        "timeseries",
        quantiles("tcxhooks_dispatcher_delivery_latency_seconds"),
        unit="s",
    ),
    panel(
        "Delivery attempts by outcome",
        "timeseries",
        [
            query(
                f"sum by (outcome, status_class) (rate(tcxhooks_dispatcher_attempts_total[{RATE}]))",
                "{{outcome}} {{status_class}}",
            )
        ],
        unit="ops",
    ),
    panel(
        "Queue depth per endpoint",
        "timeseries",
        [query("max by (endpoint) (tcxhooks_dispatcher_queue_depth)", "{{endpoint}}")],
        description="Pending deliveries (every dispatcher replica reports the shared store: max, not sum).",
    ),
    panel(
        "Oldest pending delivery per endpoint",
        "timeseries",
        [query("max by (endpoint) (tcxhooks_dispatcher_oldest_pending_age_seconds)", "{{endpoint}}")],
        unit="s",
    ),
    panel(
        "Retries and dead deliveries",
        "timeseries",
        [
            query(f"sum(increase(tcxhooks_dispatcher_retries_total[{RATE}]))", "retried"),
            query(f"sum(increase(tcxhooks_dispatcher_dead_total[{RATE}]))", "dead (retries exhausted)"),
            query(f"sum(increase(tcxhooks_dispatcher_leases_expired_total[{RATE}]))", "lease expired"),
        ],
    ),
    panel(
        "Endpoint state",
        "state-timeline",
        [query("max by (endpoint, state) (tcxhooks_dispatcher_endpoint_state) == 1", "{{endpoint}} {{state}}")],
    ),
    panel(
        "CRM API requests by outcome",
        "timeseries",
        [query(f"sum by (crm, outcome) (rate(tcxhooks_dispatcher_crm_requests_total[{RATE}]))", "{{crm}} {{outcome}}")],
        unit="reqps",
        description="Calls of the CRM adapters ([crm:NAME]): ok, refused (a verdict other than retry), "
        "unavailable (retried), limited (the CRM's request limit, waited out).",
    ),
    panel(
        "CRM request latency p99 and rate-limiter waits",
        "timeseries",
        [
            query(
                f"histogram_quantile(0.99, sum by (le, crm) (rate(tcxhooks_dispatcher_crm_request_seconds_bucket[{RATE}])))",
                "{{crm}} request p99",
            ),
            query(
                f"histogram_quantile(0.99, sum by (le, crm, lane) (rate(tcxhooks_dispatcher_crm_limiter_wait_seconds_bucket[{RATE}])))",
                "{{crm}} {{lane}} wait p99",
            ),
        ],
        unit="s",
    ),
    panel(
        "CRM call cards skipped and click-to-call",
        "timeseries",
        [
            query(
                f"sum by (crm) (increase(tcxhooks_dispatcher_crm_stale_skipped_total[{RATE}]))",
                "{{crm}} stale real-time steps skipped",
            ),
            query(
                f"sum by (crm, outcome) (increase(tcxhooks_dispatcher_crm_clicks_total[{RATE}]))",
                "{{crm}} click {{outcome}}",
            ),
            query(
                f"sum by (outcome) (increase(tcxhooks_dispatcher_crm_listener_requests_total[{RATE}]))",
                "listener {{outcome}}",
            ),
        ],
        description="Show/hide steps of events older than stale_after are skipped; clicks placed, refused "
        "(wrong token) or failed (the PBX did not place the call).",
    ),
]

PROCESSING = [
    panel(
        "Recording files transcoded",
        "timeseries",
        [query(f"sum by (outcome) (rate(tcxhooks_media_files_total[{RATE}]))", "{{outcome}}")],
        unit="ops",
    ),
    panel(
        "Audio transcoded (seconds of audio per second)",
        "timeseries",
        [query(f"sum(rate(tcxhooks_media_audio_seconds_total[{RATE}]))", "audio")],
    ),
    panel("Transcode time", "timeseries", quantiles("tcxhooks_media_transcode_seconds"), unit="s"),
    panel(
        "Recording jobs",
        "timeseries",
        [
            query(f"sum by (outcome) (rate(tcxhooks_media_jobs_total[{RATE}]))", "{{outcome}}"),
            query("sum(tcxhooks_media_jobs_in_flight)", "in flight"),
        ],
    ),
    panel(
        "Media retries and errors",
        "timeseries",
        [
            query(f"sum by (stage) (increase(tcxhooks_media_job_retries_total[{RATE}]))", "retry {{stage}}"),
            query(f"sum by (kind) (increase(tcxhooks_media_errors_total[{RATE}]))", "error {{kind}}"),
        ],
    ),
    panel(
        "Download links",
        "timeseries",
        [query(f"sum by (outcome) (rate(tcxhooks_media_link_hits_total[{RATE}]))", "{{outcome}}")],
        unit="reqps",
    ),
    panel(
        "Stored mp3 and retention purge",
        "timeseries",
        [
            query(f"sum(rate(tcxhooks_media_stored_bytes_total[{RATE}]))", "stored bytes/s"),
            query(f"sum(increase(tcxhooks_media_purged_recordings_total[{RATE}]))", "purged recordings"),
            query(f"sum by (outcome) (increase(tcxhooks_media_purge_runs_total[{RATE}]))", "purge run {{outcome}}"),
        ],
    ),
    panel("Analytics jobs by state", "timeseries", [query("max by (state) (tcxhooks_analytics_jobs)", "{{state}}")]),
    panel(
        "Analytics throughput",
        "timeseries",
        [
            query(f"sum by (outcome) (rate(tcxhooks_analytics_job_seconds_count[{RATE}]))", "jobs {{outcome}}"),
            query(f"sum by (backend) (rate(tcxhooks_analytics_audio_seconds_total[{RATE}]))", "audio s/s {{backend}}"),
        ],
    ),
    panel("Analytics job time (submit → result)", "timeseries", quantiles("tcxhooks_analytics_job_seconds"), unit="s"),
    panel(
        "Analytics backend latency p99",
        "timeseries",
        [
            query(
                f"histogram_quantile(0.99, sum by (le, backend, operation) (rate(tcxhooks_analytics_backend_seconds_bucket[{RATE}])))",
                "{{backend}} {{operation}}",
            )
        ],
        unit="s",
    ),
    panel(
        "Analytics failures and retries",
        "timeseries",
        [
            query(f"sum by (reason) (increase(tcxhooks_analytics_failures_total[{RATE}]))", "failed {{reason}}"),
            query(f"sum by (reason) (increase(tcxhooks_analytics_retries_total[{RATE}]))", "retry {{reason}}"),
        ],
    ),
]

DASHBOARDS = {
    "tcxhooks-overview": ("tcxhooks — services", OVERVIEW),
    "tcxhooks-calls": ("tcxhooks — calls and webhooks", CALLS),
    "tcxhooks-processing": ("tcxhooks — recordings and analytics", PROCESSING),
}


def _grafana_panel(spec: dict[str, Any], panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": q["expr"],
            "legendFormat": q["legendFormat"] or "__auto",
            "refId": chr(ord("A") + i),
        }
        for i, q in enumerate(spec["queries"])
    ]
    result: dict[str, Any] = {
        "id": panel_id,
        "type": spec["type"],
        "title": spec["title"],
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": spec["width"], "h": spec["height"]},
        "fieldConfig": {"defaults": {"unit": spec["unit"]}, "overrides": []},
        "options": {},
        "targets": targets,
    }
    if spec["description"]:
        result["description"] = spec["description"]
    if spec["type"] == "table":
        result["targets"] = [{**t, "format": "table", "instant": True} for t in targets]
    return result


def render(uid: str) -> dict[str, Any]:
    title, specs = DASHBOARDS[uid]
    panels, x, y, row_height = [], 0, 0, 0
    for number, spec in enumerate(specs, 1):
        if x + spec["width"] > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_grafana_panel(spec, number, x, y))
        x += spec["width"]
        row_height = max(row_height, spec["height"])
    return {
        "uid": uid,
        "title": title,
        "tags": ["tcxhooks"],
        "editable": False,
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def text(uid: str) -> str:
    return json.dumps(render(uid), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for uid in DASHBOARDS:
        (OUT / f"{uid}.json").write_text(text(uid), encoding="utf-8")
        print(f"wrote {OUT / (uid + '.json')}")


if __name__ == "__main__":
    main()
