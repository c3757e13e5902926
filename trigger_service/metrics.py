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
OUTBOX_ITEMS = Counter(
    "trigger_outbox_total",
    "Outbox deliveries (commit statuses, model registrations) by channel and outcome "
    "(delivered, retried, dropped).",
    ["channel", "outcome"],
)
