"""Decision records: every event ends in one (or, matching two pipelines, two).

A run match joins the collecting decision of its scope (coalescing a burst into one run that
lists every event it covers) or opens one; a no-run is a closed decision with its reason. The
unique partial index on (scope) where state = 'collecting' makes "join or open" safe when
several processes decide at once: the second insert does nothing and joins the first.

Each covered event keeps its own trigger and reason (decision_events), so a decision that
coalesced or merged several causes names every one (`causes`). A submitted decision ends in its
run's final state (`follow_run`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trigger_service.database import decision_events, decisions
from trigger_service.events import Event
from trigger_service.inbox import store as inbox
from trigger_service.keys import fit
from trigger_service.metrics import DECISIONS
from trigger_service.rules import Match
from trigger_service.rules.policy import due_at

SCOPE_WIDTH = 256  # decisions.scope is String(256)


def new_decision_id() -> str:
    return f"d-{uuid.uuid4().hex[:16]}"


MAX_CAUSES = 5  # triggers named in a combined reason; the rest are counted


def link(
    conn: Connection,
    decision_id: str,
    event_ids: list[str],
    now: float,
    reasons: list[str] | None = None,
    trigger: str | None = None,
) -> None:
    """Attach events to a decision; `reasons[i]` is why event i runs (its own match's reason)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    own: list[str | None] = list(reasons) if reasons else [None] * len(event_ids)
    conn.execute(
        dialect.insert(decision_events).on_conflict_do_nothing(),
        [
            {"decision_id": decision_id, "event_id": e, "at": now, "trigger": trigger, "reason": r}
            for e, r in zip(event_ids, own, strict=True)
        ],
    )


def causes(conn: Connection, decision_id: str) -> list[tuple[str, str, int]]:
    """(trigger, newest reason, events) per trigger among a decision's events, oldest first."""
    found: dict[str, tuple[str, int]] = {}
    rows = conn.execute(
        select(decision_events.c.trigger, decision_events.c.reason)
        .where(decision_events.c.decision_id == decision_id, decision_events.c.reason.is_not(None))
        .order_by(decision_events.c.at, decision_events.c.event_id)
    )
    for trigger, reason in rows:
        _, seen = found.get(trigger or "-", ("", 0))
        found[trigger or "-"] = (reason, seen + 1)
    return [(trigger, reason, n) for trigger, (reason, n) in found.items()]


def describe_causes(found: list[tuple[str, str, int]]) -> str:
    """One line naming every cause: "new-data: new object s3://b/k (+2 more); drift: ..."."""
    parts = [
        f"{trigger}: {reason}" + (f" (+{n - 1} more)" if n > 1 else "")
        for trigger, reason, n in found[:MAX_CAUSES]
    ]
    if len(found) > MAX_CAUSES:
        parts.append(f"+{len(found) - MAX_CAUSES} more triggers")
    return "; ".join(parts)


def follow_run(conn: Connection, decision_id: str, run_state: str, now: float) -> None:
    """A submitted decision takes its run's final state (succeeded, failed, canceled, ...).

    Only from `submitted`: a dead-lettered decision stays `dead` whatever its run says.
    """
    conn.execute(
        update(decisions)
        .where(decisions.c.id == decision_id, decisions.c.state == "submitted")
        .values(state=run_state, updated_at=now)
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
            {"decision_id": row["id"], "event_id": event.id, "at": now, "reason": reason}
            for row, (event, reason) in zip(rows, verdicts, strict=True)
        ],
    )
    DECISIONS.labels("-", "no_run").inc(len(rows))
    return [str(row["id"]) for row in rows]


def join_or_open(
    conn: Connection,
    batch: list[Event],
    match: Match,
    now: float,
    reasons: list[str] | None = None,
) -> str:
    """Attach a batch of events of one scope to its collecting decision, or open one.

    `match` is the newest event's: its parameters and version request are the ones that run.
    `reasons` are each event's own (default: `match.reason` for all).
    """
    policy = asdict(match.policy)
    event_ids = [e.id for e in batch]
    own = reasons or [match.reason] * len(event_ids)
    values: dict[str, Any] = {
        "version_request": asdict(match.version_request),
        "params": match.params,
        "reason": match.reason,
        "updated_at": now,
    }
    if match.policy.debounce_seconds <= 0:
        # No debounce: each event is its own decision (a NULL scope never collides).
        return _open(conn, event_ids, own, match, None, now, now, policy, values)
    # A batch key holds sender text (an object folder): a long one becomes a fixed-width key.
    scope = fit(match.batch_key, SCOPE_WIDTH)
    for _ in range(5):
        existing = conn.execute(
            select(decisions.c.id, decisions.c.first_event_at)
            .where(decisions.c.scope == scope, decisions.c.state == "collecting")
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
            link(conn, existing.id, event_ids, now, own, match.trigger)
            DECISIONS.labels(match.trigger, "coalesced").inc(len(event_ids))
            return str(existing.id)
        due = due_at(match.policy, now, now)
        decision_id = _open(conn, event_ids, own, match, scope, now, due, policy, values)
        if decision_id:
            return decision_id
    raise RuntimeError(f"could not join or open a decision for scope {match.batch_key}")


def _open(
    conn: Connection,
    event_ids: list[str],
    reasons: list[str],
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
    link(conn, decision_id, event_ids, now, reasons, match.trigger)
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


def dead_letter_events(conn: Connection, decision_id: str, error: str) -> list[str]:
    """Dead-letter the events a decision covers (through the inbox, their owner); their ids."""
    ids = covered_events(conn, decision_id)
    inbox.dead_letter(conn, ids, error)
    return ids
