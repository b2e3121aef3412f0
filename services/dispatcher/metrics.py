"""Prometheus metrics of the dispatcher (created once, at import)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("tcxhooks_dispatcher_published_total", "Events stored by Publish", ["outcome"])
ATTEMPTS = Counter("tcxhooks_dispatcher_attempts_total", "Delivery attempts", ["outcome", "status_class"])
ATTEMPTS_DELIVERED = ATTEMPTS.labels("delivered", "2xx")  # the hot path's series, looked up once
DELIVERED = Counter("tcxhooks_dispatcher_delivered_total", "Deliveries answered 2xx")
RETRIES = Counter("tcxhooks_dispatcher_retries_total", "Failed attempts scheduled again")
DEAD = Counter("tcxhooks_dispatcher_dead_total", "Deliveries that ran out of retries")
LEASES_EXPIRED = Counter("tcxhooks_dispatcher_leases_expired_total", "Claimed deliveries whose lease ran out")
PRUNED = Counter("tcxhooks_dispatcher_pruned_total", "Finished deliveries removed by housekeeping", ["status"])
REFUSED = Counter(
    "tcxhooks_dispatcher_refused_total",
    "Events routed to an endpoint that took no delivery of them (disabled, gone, backlog full)",
    ["endpoint", "reason"],
)
BACKLOG_LIMIT = Gauge("tcxhooks_dispatcher_backlog_limit", "Pending deliveries an endpoint takes at most", ["endpoint"])
QUEUE_DEPTH = Gauge("tcxhooks_dispatcher_queue_depth", "Pending deliveries", ["endpoint"])
OLDEST_PENDING = Gauge(
    "tcxhooks_dispatcher_oldest_pending_age_seconds", "Age of the oldest pending delivery", ["endpoint"]
)
ENDPOINT_STATE = Gauge(
    "tcxhooks_dispatcher_endpoint_state", "1 for the endpoint's current state", ["endpoint", "state"]
)
LATENCY = Histogram(
    "tcxhooks_dispatcher_delivery_latency_seconds",
    "Publish to 2xx answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600),
)
