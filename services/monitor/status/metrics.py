"""Prometheus metrics of the status poller (`tcxhooks_monitor_status_` prefix)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POLL_SECONDS = Histogram(
    "tcxhooks_monitor_status_poll_seconds",
    "Time of one complete XAPI directory poll and diff",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30),
)
POLL_FAILURES = Counter(
    "tcxhooks_monitor_status_poll_failures_total",
    "Polls that failed or were partial (nothing diffed), and status events the dispatcher refused, by what",
    ["what"],
)
CHANGES = Counter("tcxhooks_monitor_status_changes_total", "Status events emitted, by form event name", ["type"])
EXTENSIONS = Gauge("tcxhooks_monitor_status_extensions", "Extensions in the last complete view")
LAST_SUCCESS = Gauge("tcxhooks_monitor_status_last_success_timestamp_seconds", "Unix time of the last complete poll")
