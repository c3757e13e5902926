"""Policy: the effective settings for one (pipeline, trigger), and pure admission decisions.

    merge_policy(*layers) -> Policy     file default < pipeline < trigger, field by field
    due_at(policy, first, last) -> t    when a debounced batch fires
    admit(policy, now, ...) -> Go | Queue | Suppress

The clock is always passed in (epoch seconds), so tests need no sleeps. Checks run in this
order: hourly limit, cooldown, then concurrency; the first that objects gives the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from trigger_service.rules.model import PolicySpec

HOUR = 3600.0


@dataclass(frozen=True)
class Policy:
    debounce_seconds: float = 0.0  # 0: no coalescing, each batch is due at once
    max_wait_seconds: float = 300.0  # a debounced batch never waits longer than this
    cooldown_seconds: float = 0.0  # minimum gap between run starts
    concurrency: Literal["queue-one", "skip", "parallel"] = "queue-one"
    max_runs_per_hour: int = 0  # 0: unlimited
    batch_by: Literal["none", "prefix", "branch", "alert"] = "none"


def merge_policy(*layers: PolicySpec) -> Policy:
    """Later layers win, field by field; a field a layer leaves unset falls through."""
    values = {}
    for layer in layers:
        values.update({k: v for k, v in layer.model_dump().items() if v is not None})
    return Policy(**values)


def due_at(policy: Policy, first_event_at: float, last_event_at: float) -> float:
    """A batch fires `debounce` after its last event, but at most `max_wait` after its first."""
    return min(first_event_at + policy.max_wait_seconds, last_event_at + policy.debounce_seconds)


@dataclass(frozen=True)
class Go:
    reason: str = "admitted"


@dataclass(frozen=True)
class Queue:
    reason: str


@dataclass(frozen=True)
class Suppress:
    reason: str


Admit = Go | Queue | Suppress


def admit(
    policy: Policy,
    now: float,
    active_runs: int,
    queued: bool,
    last_run_started: float | None,
    runs_last_hour: int,
) -> Admit:
    """May a due batch start now? With queue-one and `queued`, the caller coalesces into it."""
    limit = policy.max_runs_per_hour
    if limit and runs_last_hour >= limit:
        return Suppress(f"suppressed: {runs_last_hour} runs in the last hour (max {limit})")
    if last_run_started is not None and now < last_run_started + policy.cooldown_seconds:
        until = _clock(last_run_started + policy.cooldown_seconds)
        return Suppress(f"suppressed: cooldown until {until}")
    if active_runs <= 0 or policy.concurrency == "parallel":
        return Go()
    if policy.concurrency == "skip":
        return Suppress("skipped: a run is active (concurrency skip)")
    if queued:
        return Queue("queued: coalesced into the follow-up already queued (concurrency queue-one)")
    return Queue("queued: a run is active (concurrency queue-one)")


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%SZ")
