"""Prometheus metrics of the analytics service (`tcxhooks_analytics_` prefix)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Gauge("tcxhooks_analytics_jobs", "Analytics jobs in the store by state", ["state"])
BACKEND_SECONDS = Histogram(
    "tcxhooks_analytics_backend_seconds",
    "Latency of backend calls",
    ["backend", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
AUDIO_SECONDS = Counter("tcxhooks_analytics_audio_seconds_total", "Seconds of audio transcribed", ["backend"])
FAILURES = Counter("tcxhooks_analytics_failures_total", "Jobs that finally failed, by reason", ["reason"])
RETRIES = Counter("tcxhooks_analytics_retries_total", "Job steps retried after an error, by reason", ["reason"])
JOB_SECONDS = Histogram(
    "tcxhooks_analytics_job_seconds",
    "Time from submit to result (or failure)",
    ["backend", "outcome"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
)
STORE_ERRORS = Counter(
    "tcxhooks_analytics_store_errors_total", "Job or publisher loop cycles that failed on the store (retried)"
)
REFUSED = Counter("tcxhooks_analytics_refused_total", "Finished jobs whose event the dispatcher refused as invalid")
