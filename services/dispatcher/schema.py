"""The dispatcher's tables (`dispatcher_*`), their migrations for SQLite and PostgreSQL, and the
codes stored in their state columns."""

from __future__ import annotations

from tcxhooks.platform.store import Migration

# dispatcher_deliveries.status (the numbers of the DeliveryStatus enum of dispatcher_service.proto)
PENDING, DELIVERED, DEAD = 1, 2, 3
# dispatcher_endpoints.state (the numbers of its EndpointState enum)
ENABLED, DISABLED, GONE = 1, 2, 3

# The first schema, one text for both dialects (they differ in the binary and serial key types)
_SCHEMA_1 = """
CREATE TABLE dispatcher_chains (
  chain TEXT PRIMARY KEY,
  last_sequence BIGINT NOT NULL,
  dids TEXT NOT NULL DEFAULT '',
  queues TEXT NOT NULL DEFAULT '',
  users TEXT NOT NULL DEFAULT '',
  updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE dispatcher_events (
  event_id TEXT PRIMARY KEY,
  chain TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL,
  payload {blob} NOT NULL
);
CREATE INDEX dispatcher_events_chain ON dispatcher_events (chain);
CREATE TABLE dispatcher_deliveries (
  id {serial_key},
  event_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  chain TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  event_type TEXT NOT NULL,
  call_id TEXT NOT NULL,
  status SMALLINT NOT NULL,
  ready SMALLINT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  created_at DOUBLE PRECISION NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
  lease_owner TEXT NOT NULL DEFAULT '',
  finished_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX dispatcher_deliveries_event ON dispatcher_deliveries (event_id, endpoint);
CREATE INDEX dispatcher_deliveries_ready ON dispatcher_deliveries (next_attempt_at) WHERE status = 1 AND ready = 1;
CREATE INDEX dispatcher_deliveries_pending ON dispatcher_deliveries (endpoint, chain, sequence) WHERE status = 1;
CREATE INDEX dispatcher_deliveries_call ON dispatcher_deliveries (call_id);
CREATE INDEX dispatcher_deliveries_chain ON dispatcher_deliveries (chain);
CREATE INDEX dispatcher_deliveries_finished ON dispatcher_deliveries (finished_at) WHERE status = 2;
CREATE TABLE dispatcher_attempts (
  id {serial_key},
  delivery_id BIGINT NOT NULL,
  number INTEGER NOT NULL,
  at DOUBLE PRECISION NOT NULL,
  http_status INTEGER NOT NULL,
  latency DOUBLE PRECISION NOT NULL,
  response TEXT NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX dispatcher_attempts_delivery ON dispatcher_attempts (delivery_id);
CREATE TABLE dispatcher_endpoints (
  name TEXT PRIMARY KEY,
  state SMALLINT NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  updated_at DOUBLE PRECISION NOT NULL
)
"""

# The PostgreSQL type of each column the dispatcher inserts into, for inserts sent as one array per
# column (sql.py); a column an insert gains needs its type here. `number` is an INTEGER of
# dispatcher_attempts and a BIGINT of dispatcher_fences: bigint serves both (an INSERT casts it).
PG_COLUMN_TYPES = {
    **dict.fromkeys(
        ("event_id", "chain", "endpoint", "event_type", "call_id", "message_id", "lease_owner", "lease"), "text"
    ),
    **dict.fromkeys(("dids", "queues", "users", "endpoint_sequences", "response", "error"), "text"),
    **dict.fromkeys(("sequence", "last_sequence", "endpoint_sequence", "delivery_id", "number"), "bigint"),
    **dict.fromkeys(("created_at", "updated_at", "next_attempt_at", "lease_until", "at", "latency"), "float8"),
    **dict.fromkeys(("status", "ready"), "smallint"),
    "http_status": "integer",
    "payload": "bytea",
}

MIGRATIONS = [
    Migration(
        1,
        _SCHEMA_1.format(blob="BLOB", serial_key="INTEGER PRIMARY KEY AUTOINCREMENT"),
        _SCHEMA_1.format(blob="BYTEA", serial_key="BIGSERIAL PRIMARY KEY"),
    ),
    # claims are made per endpoint: a disabled endpoint's backlog is never walked over
    Migration(
        2,
        """
DROP INDEX dispatcher_deliveries_ready;
CREATE INDEX dispatcher_deliveries_ready ON dispatcher_deliveries (endpoint, next_attempt_at) WHERE status = 1 AND ready = 1
""",
    ),
    # chain first: "which endpoints have a pending delivery in these chains" (every publish) reads
    # only pending rows, not every delivery a long-lived chain such as `ext:101` ever had
    Migration(
        3,
        """
DROP INDEX dispatcher_deliveries_pending;
CREATE INDEX dispatcher_deliveries_pending ON dispatcher_deliveries (chain, endpoint, sequence) WHERE status = 1
""",
    ),
    # webhook-id fixed when the event is stored (globally unique, kept by retries and redeliveries);
    # per (endpoint, chain) numbering of the deliveries (x-tcxhooks-endpoint-sequence): the chain keeps
    # each endpoint's last number. Rows stored before have '' and 0 (see outbox.py).
    Migration(
        4,
        """
ALTER TABLE dispatcher_events ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE dispatcher_deliveries ADD COLUMN endpoint_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dispatcher_chains ADD COLUMN endpoint_sequences TEXT NOT NULL DEFAULT ''
""",
    ),
    # the highest fencing number seen per producer lease (dispatcher_service.proto, Fence)
    Migration(5, "CREATE TABLE dispatcher_fences (lease TEXT PRIMARY KEY, number BIGINT NOT NULL)"),
]
