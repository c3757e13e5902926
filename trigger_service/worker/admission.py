"""Firing due decisions through the policy: go (ready to submit), queue, or suppress.

A collecting decision fires when its debounce window or max wait ends. Admission looks at the
pipeline's runs: active ones (concurrency), the last start (cooldown) and the last hour (rate).
With queue-one, a second decision that must wait while one is already queued is merged into the
queued one, so a run in progress has at most one follow-up however many bursts arrive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, func, or_, select, update

from trigger_service.database import decision_events, decisions
from trigger_service.metrics import DECISIONS
from trigger_service.pauses import paused_triggers
from trigger_service.rules.policy import Go, Policy, Queue, Suppress, admit
from trigger_service.tracking import runs
from trigger_service.worker.decisions import causes, describe_causes

if TYPE_CHECKING:
    from trigger_service.tracking.reports import StatusReporter


def fire_due(
    conn: Connection, now: float, limit: int = 50, reports: StatusReporter | None = None
) -> int:
    """Admit collecting decisions whose time has come, then queued ones that may now run."""
    fired = 0
    due = conn.execute(
        select(decisions)
        .where(decisions.c.state == "collecting", decisions.c.due_at <= now, not_paused())
        .order_by(decisions.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in due:
        _admit(conn, row, now, reports)
        fired += 1
    queued = conn.execute(
        select(decisions)
        .where(decisions.c.state == "queued")
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in queued:
        if _active(conn, row.pipeline) == 0:
            _admit(conn, row, now, reports)
            fired += 1
    return fired


def not_paused() -> ColumnElement[bool]:
    """A collecting decision of a paused trigger waits: it fires once the trigger resumes."""
    held = paused_triggers()
    return or_(decisions.c.trigger.is_(None), decisions.c.trigger.not_in(held))


def _active(conn: Connection, pipeline: str) -> int:
    running = runs.active_count(conn, pipeline)
    admitted = conn.execute(
        select(func.count())
        .select_from(decisions)
        .where(decisions.c.pipeline == pipeline, decisions.c.state.in_(["ready", "submitting"]))
    ).scalar_one()
    return int(running) + int(admitted)


def verdict_for(
    conn: Connection, pipeline: str, policy: Policy, now: float, exclude: str | None = None
) -> tuple[Go | Queue | Suppress, str | None]:
    """What the policy says now for a run of `pipeline`, and the id of a queued decision."""
    queued_other = conn.execute(
        select(decisions.c.id).where(
            decisions.c.pipeline == pipeline,
            decisions.c.state == "queued",
            decisions.c.id != (exclude or ""),
        )
    ).scalar()
    last_started = runs.last_started(conn, pipeline)
    last_hour = runs.started_since(conn, pipeline, now - 3600)
    verdict = admit(
        policy,
        now=now,
        active_runs=_active(conn, pipeline),
        queued=queued_other is not None,
        last_run_started=last_started,
        runs_last_hour=int(last_hour),
    )
    return verdict, queued_other


def _admit(conn: Connection, row: Any, now: float, reports: StatusReporter | None = None) -> None:
    verdict, queued_other = verdict_for(conn, row.pipeline, Policy(**row.policy), now, row.id)
    _apply(conn, row, now, verdict, queued_other)
    if reports is not None:  # commit statuses, in this transaction (tracking/reports.py)
        reports.decision_changed(conn, row.id, now)
        if queued_other is not None:
            reports.decision_changed(conn, str(queued_other), now)


def _apply(
    conn: Connection, row: Any, now: float, verdict: Go | Queue | Suppress, queued_other: Any
) -> None:
    if isinstance(verdict, Go):
        _set(conn, row.id, now, state="ready")
        DECISIONS.labels(row.trigger or "-", "ready").inc()
    elif isinstance(verdict, Queue) and queued_other is not None and row.state != "queued":
        _merge(conn, row, str(queued_other), now)
    elif isinstance(verdict, Queue):
        if row.state != "queued":
            _set(conn, row.id, now, state="queued", last_error=verdict.reason)
            DECISIONS.labels(row.trigger or "-", "queued").inc()
    elif isinstance(verdict, Suppress):
        _set(conn, row.id, now, state="suppressed", outcome="no_run", reason=verdict.reason)
        DECISIONS.labels(row.trigger or "-", "suppressed").inc()


def _merge(conn: Connection, row: Any, into: str, now: float) -> None:
    """Fold a waiting decision into the already queued one: its events (each keeping its own
    reason), its newest params; the queued decision's reason then names every cause."""
    conn.execute(
        update(decision_events)
        .where(decision_events.c.decision_id == row.id)
        .values(decision_id=into)
    )
    conn.execute(
        update(decisions)
        .where(decisions.c.id == into)
        .values(
            event_count=decisions.c.event_count + row.event_count,
            params=row.params,
            version_request=row.version_request,
            reason=describe_causes(causes(conn, into)) or row.reason,
            updated_at=now,
        )
    )
    _set(
        conn,
        row.id,
        now,
        state="merged",
        outcome="no_run",
        reason=f"coalesced into queued decision {into}",
    )
    DECISIONS.labels(row.trigger or "-", "coalesced").inc()


def _set(conn: Connection, decision_id: str, now: float, **values: Any) -> None:
    conn.execute(
        update(decisions).where(decisions.c.id == decision_id).values(updated_at=now, **values)
    )
