"""Reads of the worker's tables (`decisions`, `decision_events`) for the API and the console.

The timeline and a decision's events join the inbox's `events` to the decisions they ended in:
the join is the worker's relation, so it is read here (the inbox knows nothing downstream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, cast, func, or_, select

from trigger_service.database import decision_events, decisions, events
from trigger_service.events import Event
from trigger_service.inbox.store import row_to_event
from trigger_service.worker.decisions import covered_events

# Run decisions not yet a run (`trigger-service status`).
WAITING_STATES = ("collecting", "queued", "ready", "submitting")


def decision_dict(conn: Connection, row: Any, with_events: bool = True) -> dict[str, Any]:
    data = {
        "id": row.id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "trigger": row.trigger,
        "pipeline": row.pipeline,
        "outcome": row.outcome,
        "state": row.state,
        "reason": row.reason,
        "version": row.version,
        "version_request": row.version_request,
        "params": row.params,
        "event_count": row.event_count,
        "due_at": row.due_at,
        "idempotency_key": row.idempotency_key,
        "run_id": row.run_id,
        "attempts": row.attempts,
        "last_error": row.last_error,
    }
    if with_events:
        data["event_ids"] = covered_events(conn, row.id)
        data["events"] = [
            {"id": r.event_id, "trigger": r.trigger, "reason": r.reason}
            for r in conn.execute(
                select(
                    decision_events.c.event_id, decision_events.c.trigger, decision_events.c.reason
                )
                .where(decision_events.c.decision_id == row.id)
                .order_by(decision_events.c.at, decision_events.c.event_id)
            )
        ]
    return data


def list_decisions(
    conn: Connection,
    outcome: str | None = None,
    state: str | None = None,
    pipeline: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    stmt = select(decisions).order_by(decisions.c.created_at.desc(), decisions.c.id)
    for column, value in (
        (decisions.c.outcome, outcome),
        (decisions.c.state, state),
        (decisions.c.pipeline, pipeline),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = conn.execute(stmt.limit(limit).offset(offset)).all()
    return [decision_dict(conn, r, with_events=False) for r in rows]


def get_decision(conn: Connection, decision_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
    return decision_dict(conn, row) if row is not None else None


def decision_row(conn: Connection, decision_id: str) -> dict[str, Any] | None:
    """Every column of one decision as stored (the console's models page), or None."""
    row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
    return dict(row._mapping) if row is not None else None


def decision_policy(conn: Connection, decision_id: str) -> dict[str, Any] | None:
    """The policy a decision was decided under (rules' PolicySpec as a dict), or None."""
    row = conn.execute(select(decisions.c.policy).where(decisions.c.id == decision_id)).first()
    return row.policy if row is not None else None


def waiting_counts(conn: Connection) -> dict[str, int]:
    """Run decisions not yet a run, by state (only states that have some)."""
    return {
        str(state): int(count)
        for state, count in conn.execute(
            select(decisions.c.state, func.count())
            .where(decisions.c.state.in_(list(WAITING_STATES)))
            .group_by(decisions.c.state)
        )
    }


def decisions_of_event(conn: Connection, event_id: str) -> list[str]:
    """The ids of the decisions an event ended in (usually one)."""
    return list(
        conn.execute(
            select(decision_events.c.decision_id).where(decision_events.c.event_id == event_id)
        ).scalars()
    )


def events_of_decision(conn: Connection, decision_id: str, limit: int = 200) -> list[Event]:
    """The events a decision covers, oldest first, at most `limit`."""
    rows = conn.execute(
        select(events)
        .join(decision_events, decision_events.c.event_id == events.c.id)
        .where(decision_events.c.decision_id == decision_id)
        .order_by(decision_events.c.at, events.c.id)
        .limit(limit)
    ).all()
    return [row_to_event(row) for row in rows]


@dataclass(frozen=True)
class TimelineFilter:
    source: str | None = None
    kind: str | None = None
    outcome: str | None = None  # run | no_run | waiting (not decided yet) | dead
    pipeline: str | None = None
    text: str | None = None  # in the event id, its subject or the decision's reason


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def timeline(
    conn: Connection, wanted: TimelineFilter, limit: int = 100, offset: int = 0
) -> list[Any]:
    """Events newest first from row `offset`, each row with its decision (if any): id,
    received_at, source, kind, subject, status, last_error, decision_id, outcome, state, reason,
    pipeline, trigger, run_id."""
    stmt = (
        select(
            events.c.id,
            events.c.received_at,
            events.c.source,
            events.c.kind,
            events.c.subject,
            events.c.status,
            events.c.last_error,
            decisions.c.id.label("decision_id"),
            decisions.c.outcome,
            decisions.c.state,
            decisions.c.reason,
            decisions.c.pipeline,
            decisions.c.trigger,
            decisions.c.run_id,
        )
        .select_from(events)
        .outerjoin(decision_events, decision_events.c.event_id == events.c.id)
        .outerjoin(decisions, decisions.c.id == decision_events.c.decision_id)
        .order_by(events.c.received_at.desc(), events.c.id)
        .limit(limit)
        .offset(offset)
    )
    if wanted.source:
        stmt = stmt.where(events.c.source == wanted.source)
    if wanted.kind:
        stmt = stmt.where(events.c.kind == wanted.kind)
    if wanted.pipeline:
        stmt = stmt.where(decisions.c.pipeline == wanted.pipeline)
    if wanted.outcome in ("run", "no_run"):
        stmt = stmt.where(decisions.c.outcome == wanted.outcome)
    elif wanted.outcome == "waiting":
        stmt = stmt.where(events.c.status.in_(["pending", "claimed"]))
    elif wanted.outcome == "dead":
        stmt = stmt.where(events.c.status == "dead")
    if wanted.text:
        pattern = _like(wanted.text)
        stmt = stmt.where(
            or_(
                events.c.id.ilike(pattern, escape="\\"),
                cast(events.c.subject, String).ilike(pattern, escape="\\"),
                decisions.c.reason.ilike(pattern, escape="\\"),
            )
        )
    return list(conn.execute(stmt).all())
