"""Decision records: every event ends in one (or, matching two pipelines, two).

A run match joins the collecting decision of its scope (coalescing a burst into one run that
lists every event it covers) or opens one; a no-run is a closed decision with its reason. The
unique partial index on (scope) where state = 'collecting' makes "join or open" safe when
several processes decide at once: the second insert does nothing and joins the first.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trigger_service.database import decision_events, decisions, events
from trigger_service.events import Event
from trigger_service.metrics import DECISIONS
from trigger_service.rules import Match
from trigger_service.rules.policy import due_at


def new_decision_id() -> str:
    return f"d-{uuid.uuid4().hex[:16]}"


def link(conn: Connection, decision_id: str, event_ids: list[str], now: float) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(decision_events).on_conflict_do_nothing(),
        [{"decision_id": decision_id, "event_id": e, "at": now} for e in event_ids],
    )


def record_no_runs(conn: Connection, verdicts: list[tuple[Event, str]], now: float) -> list[str]:
    """One closed decision per event that runs nothing, with its reason (two statements for the
    whole batch: most events of a busy repository or bucket end here). Returns their ids."""
    if not verdicts:
        return []
    rows = [
        {
            "id": new_decision_id(),
            "created_at": now,
            "updated_at": now,
            "outcome": "no_run",
            "state": "done",
            "reason": reason,
            "event_count": 1,
            "first_event_at": event.received_at.timestamp(),
        }
        for event, reason in verdicts
    ]
    conn.execute(insert(decisions), rows)
    conn.execute(
        insert(decision_events),
        [
            {"decision_id": row["id"], "event_id": event.id, "at": now}
            for row, (event, _) in zip(rows, verdicts, strict=True)
        ],
    )
    DECISIONS.labels("-", "no_run").inc(len(rows))
    return [str(row["id"]) for row in rows]


def join_or_open(conn: Connection, batch: list[Event], match: Match, now: float) -> str:
    """Attach a batch of events of one scope to its collecting decision, or open one.

    `match` is the newest event's: its parameters and version request are the ones that run.
    """
    policy = asdict(match.policy)
    event_ids = [e.id for e in batch]
    values: dict[str, Any] = {
        "version_request": asdict(match.version_request),
        "params": match.params,
        "reason": match.reason,
        "updated_at": now,
    }
    if match.policy.debounce_seconds <= 0:
        # No debounce: each event is its own decision (a NULL scope never collides).
        return _open(conn, event_ids, match, None, now, now, policy, values)
    for _ in range(5):
        existing = conn.execute(
            select(decisions.c.id, decisions.c.first_event_at)
            .where(decisions.c.scope == match.batch_key, decisions.c.state == "collecting")
            .with_for_update()
        ).first()
        if existing is not None:
            conn.execute(
                update(decisions)
                .where(decisions.c.id == existing.id)
                .values(
                    event_count=decisions.c.event_count + len(event_ids),
                    due_at=due_at(match.policy, existing.first_event_at, now),
                    **values,
                )
            )
            link(conn, existing.id, event_ids, now)
            DECISIONS.labels(match.trigger, "coalesced").inc(len(event_ids))
            return str(existing.id)
        due = due_at(match.policy, now, now)
        decision_id = _open(conn, event_ids, match, match.batch_key, now, due, policy, values)
        if decision_id:
            return decision_id
    raise RuntimeError(f"could not join or open a decision for scope {match.batch_key}")


def _open(
    conn: Connection,
    event_ids: list[str],
    match: Match,
    scope: str | None,
    now: float,
    due: float,
    policy: dict[str, Any],
    values: dict[str, Any],
) -> str:
    """Open a collecting decision; "" when another process opened this scope's first."""
    decision_id = new_decision_id()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(decisions)
        .values(
            id=decision_id,
            created_at=now,
            trigger=match.trigger,
            pipeline=match.pipeline.name,
            outcome="run",
            state="collecting",
            scope=scope,
            policy=policy,
            event_count=len(event_ids),
            first_event_at=now,
            due_at=due,
            idempotency_key=decision_id,
            **values,
        )
        .on_conflict_do_nothing()
        # SQLAlchemy keeps an INSERT's rowcount only when asked (psycopg 3 loses it otherwise).
        .execution_options(preserve_rowcount=True)
    ).rowcount
    if inserted != 1:
        return ""
    link(conn, decision_id, event_ids, now)
    DECISIONS.labels(match.trigger, "run").inc()
    if len(event_ids) > 1:
        DECISIONS.labels(match.trigger, "coalesced").inc(len(event_ids) - 1)
    return decision_id


def covered_events(conn: Connection, decision_id: str) -> list[str]:
    return list(
        conn.execute(
            select(decision_events.c.event_id)
            .where(decision_events.c.decision_id == decision_id)
            .order_by(decision_events.c.at, decision_events.c.event_id)
        ).scalars()
    )


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


def dead_letter_events(conn: Connection, decision_id: str, error: str) -> list[str]:
    ids = covered_events(conn, decision_id)
    conn.execute(
        update(events)
        .where(events.c.id.in_(ids))
        .values(status="dead", last_error=error, lease_until=None)
    )
    return ids
