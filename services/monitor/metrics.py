"""Prometheus metrics of the monitor (module level: created once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PBX_REQUEST_SECONDS = Histogram(
    "tcxhooks_monitor_pbx_request_seconds",
    "Latency of HTTP requests to the PBX",
    ["kind", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKEN_MINTS = Counter("tcxhooks_monitor_token_mints_total", "OAuth tokens minted", ["outcome"])
ACTIVE_CALLS = Gauge("tcxhooks_monitor_active_calls", "Calls (3CX call numbers) the monitor holds")
EVENTS_EMITTED = Counter("tcxhooks_monitor_events_emitted_total", "Call events emitted", ["event"])
WS_RECONNECTS = Counter("tcxhooks_monitor_ws_reconnects_total", "Call Control WebSocket (re)connects", ["outcome"])
WS_CONNECTED = Gauge("tcxhooks_monitor_ws_connected", "1 while the Call Control WebSocket is open")
RESYNC_SECONDS = Histogram(
    "tcxhooks_monitor_resync_seconds",
    "Duration of a full Call Control resync (GET /callcontrol + reconcile)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MALFORMED = Counter(
    "tcxhooks_monitor_malformed_messages_total", "Call Control messages rejected or ignored", ["reason"]
)
PUBLISH_RETRIES = Counter(
    "tcxhooks_monitor_publish_retries_total", "Failed hand-overs to a peer service, retried", ["peer"]
)
RECONCILED = Counter(
    "tcxhooks_monitor_reconciled_calls_total",
    "Ended calls checked against the PBX call log (docs/3cx.md §4.7)",
    ["outcome"],
)
RECONCILE_DISAGREEMENTS = Counter(
    "tcxhooks_monitor_reconcile_disagreements_total",
    "Fields the PBX call log reports otherwise than the monitor",
    ["field"],
)
RECOVERED = Counter(
    "tcxhooks_monitor_recovered_calls_total",
    "Calls in the PBX call log of a Call Control outage, by what recovery did with them",
    ["outcome"],
)
