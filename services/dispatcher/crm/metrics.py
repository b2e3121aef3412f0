"""Prometheus metrics of the CRM adapters (created once, at import). `crm` is the [crm:NAME] name."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "tcxhooks_dispatcher_crm_requests_total", "CRM API requests by outcome", ["crm", "outcome"]
)  # ok, refused, unavailable, limited
REQUEST_SECONDS = Histogram(
    "tcxhooks_dispatcher_crm_request_seconds",
    "CRM API request latency",
    ["crm"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LIMITER_WAIT = Histogram(
    "tcxhooks_dispatcher_crm_limiter_wait_seconds",
    "Time a CRM request waited for the adapter's rate limiter",
    ["crm", "lane"],
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
STALE_SKIPPED = Counter(
    "tcxhooks_dispatcher_crm_stale_skipped_total",
    "Real-time CRM steps skipped because their event was older than stale_after",
    ["crm"],
)
CLICKS = Counter(
    "tcxhooks_dispatcher_crm_clicks_total", "Click-to-call requests from CRMs by outcome", ["crm", "outcome"]
)  # started, refused, failed
LISTENER = Counter(
    "tcxhooks_dispatcher_crm_listener_requests_total", "Requests to the CRM listener by outcome", ["outcome"]
)  # ok, rejected, unknown, error


def request_outcome(status: int) -> str:
    """The REQUESTS outcome of a CRM's HTTP answer."""
    if status < 300:
        return "ok"
    if status in (429, 503):
        return "limited"
    return "unavailable" if status >= 500 else "refused"
