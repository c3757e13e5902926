"""The outbox table's only writer: enqueue (in the caller's transaction), claim, settle.

    enqueue(conn, item, now, supersede=...) -> bool    in the transaction of the state change
    claim(engine, worker_id, limit, lease, now) -> list[Row]
    renew(engine, row_id, worker_id, lease, now) -> bool   before each delivery of a batch
    delivered / retry_later / drop / release(engine, row_id, ...)

Idempotency: one row per `key`. Enqueueing a key again with the same payload does nothing (a
replay, a restart, a second worker); with another payload the row is replaced by a new one (a
new id, so it sorts after everything already queued) and sent again. Ordering: a row is claimed
only when no older row of its `ordering` is still pending or being sent, so deliveries of one
commit's context, or of one model, happen in the order they were written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from trigger_service import leases
from trigger_service.database import outbox, write

OPEN_STATES = ("pending", "sending")
MAX_KEY = 256
OUTBOX_LEASES = leases.Leased(
    outbox, outbox.c.state, waiting="pending", held="sending", stamped=True
)


@dataclass(frozen=True)
class OutboxItem:
    """One thing to tell another system. `channel` names the plug-in that delivers it."""

    channel: str
    key: str
    ordering: str
    payload: dict[str, Any]
    run_id: str | None = None
    decision_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def bounded(text: str) -> str:
    """A key that fits the column: long ones (deep GitLab groups) become a stable hash."""
    if len(text) <= MAX_KEY:
        return text
    return f"{text[:150]}#sha256:{hashlib.sha256(text.encode()).hexdigest()}"


def enqueue(conn: Connection, item: OutboxItem, now: float, *, supersede: bool = False) -> bool:
    """Queue `item` in the caller's transaction; False when that exact item is already there.

    `supersede`: pending rows of the same ordering are no longer worth sending (a commit
    status: only the newest state of a context matters) and are marked superseded.
    """
    key = bounded(item.key)
    ordering = bounded(item.ordering)
    existing = conn.execute(
        select(outbox.c.id, outbox.c.payload, outbox.c.state).where(outbox.c.key == key)
    ).first()
    if existing is not None:
        if existing.payload == item.payload and existing.state != "superseded":
            return False
        conn.execute(delete(outbox).where(outbox.c.id == existing.id))
    if supersede:
        conn.execute(
            update(outbox)
            .where(outbox.c.ordering == ordering, outbox.c.state == "pending")
            .values(state="superseded", updated_at=now)
        )
    # Two workers reporting one change at once (both saw it first): the second insert does
    # nothing instead of failing the transaction of the change it reports.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(outbox)
        .values(
            key=key,
            channel=item.channel,
            ordering=ordering,
            payload=item.payload,
            state="pending",
            attempts=0,
            not_before=now,
            run_id=item.run_id,
            decision_id=item.decision_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[outbox.c.key])
        .execution_options(preserve_rowcount=True)
    ).rowcount
    return inserted == 1


def claim(
    engine: Engine, worker_id: str, limit: int, lease_seconds: float, now: float
) -> list[Any]:
    """Take up to `limit` due rows (oldest first) whose ordering has nothing older open."""
    older = aliased(outbox)
    blocked = exists().where(
        older.c.ordering == outbox.c.ordering,
        older.c.id < outbox.c.id,
        older.c.state.in_(OPEN_STATES),
    )
    rows = leases.claim(
        engine,
        OUTBOX_LEASES,
        worker_id,
        limit=limit,
        lease_seconds=lease_seconds,
        now=now,
        order_by=(outbox.c.id,),
        also=(~blocked,),
    )
    return sorted(rows, key=lambda r: r.id)


def renew(engine: Engine, row_id: int, worker_id: str, lease_seconds: float, now: float) -> bool:
    """Extend this worker's claim on a row just before delivering it; False when the lease ran
    out meanwhile (a slow batch): another worker may hold the row, so it must not be sent."""
    return _if_sending(
        engine,
        row_id,
        worker_id,
        outbox.c.lease_until >= now,
        lease_until=now + lease_seconds,
        updated_at=now,
    )


def _settle(engine: Engine, row_id: int, worker_id: str, **values: Any) -> bool:
    """Record the outcome if this worker still holds the claim (a lost lease changes nothing)."""
    return _if_sending(engine, row_id, worker_id, lease_until=None, **values)


def _if_sending(
    engine: Engine, row_id: int, worker_id: str, *also: ColumnElement[bool], **values: Any
) -> bool:
    with write(engine) as conn:
        return leases.update_if_held(
            conn, outbox, row_id, worker_id, also=(outbox.c.state == "sending", *also), **values
        )


def delivered(
    engine: Engine, row_id: int, worker_id: str, now: float, result: dict[str, Any] | None
) -> bool:
    return _settle(
        engine,
        row_id,
        worker_id,
        state="delivered",
        delivered_at=now,
        updated_at=now,
        result=result,
        last_error=None,
    )


def retry_later(
    engine: Engine, row_id: int, worker_id: str, now: float, delay: float, error: str
) -> bool:
    return _settle(
        engine,
        row_id,
        worker_id,
        state="pending",
        not_before=now + delay,
        updated_at=now,
        last_error=error,
    )


def release(engine: Engine, row_id: int, worker_id: str, now: float, not_before: float) -> bool:
    """Give a claimed row back untried (its channel just failed): pending from `not_before`,
    the claim's attempt not counted."""
    return _settle(
        engine,
        row_id,
        worker_id,
        state="pending",
        not_before=not_before,
        updated_at=now,
        attempts=outbox.c.attempts - 1,
    )


def drop(engine: Engine, row_id: int, worker_id: str, now: float, error: str) -> bool:
    return _settle(engine, row_id, worker_id, state="dropped", updated_at=now, last_error=error)


def purge(engine: Engine, settled_before: float, limit: int = 5000) -> int:
    """Delete up to `limit` rows settled (delivered, dropped, superseded) before that time."""
    settled = ("delivered", "dropped", "superseded")
    old = (
        select(outbox.c.id)
        .where(outbox.c.state.in_(settled), outbox.c.updated_at < settled_before)
        .limit(limit)
        .scalar_subquery()
    )
    with write(engine) as conn:
        return int(conn.execute(delete(outbox).where(outbox.c.id.in_(old))).rowcount or 0)


def item_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "channel": row.channel,
        "key": row.key,
        "state": row.state,
        "payload": row.payload,
        "attempts": row.attempts,
        "not_before": row.not_before,
        "last_error": row.last_error,
        "result": row.result,
        "run_id": row.run_id,
        "decision_id": row.decision_id,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }


def items_for(
    conn: Connection, *, run_id: str | None = None, decision_id: str | None = None
) -> list[dict[str, Any]]:
    """The outbox rows about a run or a decision, oldest first (for lineage and the console)."""
    stmt = select(outbox).order_by(outbox.c.id)
    if run_id is not None:
        stmt = stmt.where(outbox.c.run_id == run_id)
    if decision_id is not None:
        stmt = stmt.where(outbox.c.decision_id == decision_id)
    return [item_dict(r) for r in conn.execute(stmt)]


def counts(conn: Connection) -> dict[str, int]:
    """Rows by state (for /metrics and the status page)."""
    from sqlalchemy import func

    return {
        str(state): int(n)
        for state, n in conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
    }
