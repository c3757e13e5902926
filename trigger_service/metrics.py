"""Prometheus metrics, defined once. Label values never carry secrets or payload text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RECEIVED = Counter(
    "trigger_events_received_total",
    "Webhook deliveries by source and outcome (accepted, duplicate, ignored, rejected, "
    "unauthorized, too_large).",
    ["source", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "trigger_request_seconds",
    "Webhook request latency, including the durable store.",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
UNVERIFIED_BYTES = Gauge(
    "trigger_unverified_body_bytes", "Body bytes held by requests whose signature is unchecked."
)
INBOX_DEPTH = Gauge("trigger_inbox_depth", "Events in the inbox by status.", ["status"])
DECISIONS = Counter(
    "trigger_decisions_total",
    "Decisions by trigger and outcome (run, no_run, coalesced, queued, suppressed).",
    ["trigger", "outcome"],
)
DECISION_SECONDS = Histogram(
    "trigger_decision_seconds",
    "Time from an event being stored to its decision.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
DEAD_LETTERS = Counter(
    "trigger_dead_letters_total", "Events dead-lettered, by the stage that gave up.", ["stage"]
)
SUBMIT_FAILURES = Counter(
    "trigger_submit_failures_total", "Submission attempts that failed.", ["backend", "kind"]
)
RUNS = Counter("trigger_runs_total", "Runs by pipeline and final state.", ["pipeline", "state"])
ALERTS_TRUNCATED = Counter(
    "trigger_alerts_truncated_total",
    "Alerts a sender cut from its notifications (truncatedAlerts, its max_alerts), by source; "
    "counted on every delivery, repeats included, while the group stays cut.",
    ["source"],
)
RECONCILE_LISTED = Counter(
    "trigger_reconcile_objects_listed_total",
    "Objects a data trigger's bucket listing returned.",
    ["trigger"],
)
RECONCILE_MISSING = Counter(
    "trigger_reconcile_objects_missing_total",
    "Objects a listing found that no notification had brought: each became a new event.",
    ["trigger"],
)
RECONCILE_BASELINE = Counter(
    "trigger_reconcile_objects_baseline_total",
    "Objects already there at a trigger's first listing, recorded as seen without a run.",
    ["trigger"],
)
RECONCILE_ERRORS = Counter(
    "trigger_reconcile_errors_total",
    "Bucket listings that failed (retried with backoff).",
    ["trigger"],
)
RECONCILE_SECONDS = Histogram(
    "trigger_reconcile_seconds",
    "Duration of one complete listing pass of a data trigger.",
    ["trigger"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
STORE_HEALTHY = Gauge(
    "trigger_store_healthy",
    "1 when the store took the last write (probe or delivery), 0 when it failed (locked, full, "
    "file gone or replaced, PostgreSQL down).",
)
STORE_ERRORS = Counter(
    "trigger_store_errors_total", "Times the store turned unhealthy, or failed for a new reason."
)
WORKER_ALIVE = Gauge("trigger_worker_alive", "1 while the worker thread runs; 0 once it died.")
RULES_RELOAD_FAILURES = Counter(
    "trigger_rules_reload_failures_total",
    "Changed rules files refused at reload (the previous rules stay in use).",
)
RULES_RELOAD_OK = Gauge(
    "trigger_rules_reload_ok", "1 when the rules in use are the file's current content, else 0."
)
OUTBOX_ITEMS = Counter(
    "trigger_outbox_total",
    "Outbox deliveries (commit statuses, model registrations) by channel and outcome "
    "(delivered, retried, dropped).",
    ["channel", "outcome"],
)
