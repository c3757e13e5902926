"""Durable, idempotent event store with claims that are safe across processes.

Insert is idempotent on Event.id (ON CONFLICT DO NOTHING), so a redelivery stores nothing new.
A claim moves pending events to `claimed` with a lease: on PostgreSQL the candidate rows are
locked with FOR UPDATE SKIP LOCKED, on SQLite the UPDATE itself takes the database write lock.
An expired lease (a worker that died mid-decision) makes the event claimable again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trigger_service.database import decision_events, events
from trigger_service.events import Event, EventKind, subject_from_dict, subject_to_dict

Clock = Callable[[], float]
STATUSES = ("pending", "claimed", "decided", "dead")


@dataclass(frozen=True)
class StoreResult:
    event_id: str
    new: bool


@dataclass(frozen=True)
class ClaimedEvent:
    event: Event
    attempts: int


def _insert(engine: Engine) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(events)


def row_to_event(row: Any) -> Event:
    kind = EventKind(row.kind)
    return Event(
        id=row.id,
        kind=kind,
        source=row.source,
        subject=subject_from_dict(kind, row.subject),
        received_at=datetime.fromtimestamp(row.received_at, UTC),
        delivery_id=row.delivery_id,
    )


class Inbox:
    def __init__(self, engine: Engine, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    # --- the request path: store, then acknowledge
    def store(self, batch: Sequence[Event]) -> list[StoreResult]:
        """Store every event in one transaction; returns which ids were new."""
        results = []
        with self.engine.begin() as conn:
            for event in batch:
                stmt = (
                    _insert(self.engine)
                    .values(
                        id=event.id,
                        source=event.source,
                        kind=event.kind.value,
                        subject=subject_to_dict(event.subject),
                        delivery_id=event.delivery_id,
                        received_at=event.received_at.timestamp(),
                        status="pending",
                        attempts=0,
                        not_before=0.0,
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                    # An INSERT's rowcount survives only when asked for (psycopg 3 loses it).
                    .execution_options(preserve_rowcount=True)
                )
                results.append(StoreResult(event.id, conn.execute(stmt).rowcount == 1))
        return results

    # --- the worker
    def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[ClaimedEvent]:
        now = self.clock()
        claimable = or_(
            and_(events.c.status == "pending", events.c.not_before <= now),
            and_(events.c.status == "claimed", events.c.lease_until < now),
        )
        candidates = (
            select(events.c.id)
            .where(claimable)
            .order_by(events.c.received_at, events.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            update(events)
            .where(events.c.id.in_(candidates), claimable)
            .values(
                status="claimed",
                claimed_by=worker_id,
                lease_until=now + lease_seconds,
                attempts=events.c.attempts + 1,
            )
            .returning(*events.c)
        )
        with self.engine.begin() as conn:
            rows = sorted(conn.execute(stmt).all(), key=lambda r: (r.received_at, r.id))
        return [ClaimedEvent(row_to_event(r), r.attempts) for r in rows]

    def finish(self, event_ids: Sequence[str], conn: Any) -> None:
        """Mark decided, inside the caller's transaction (the one recording the decisions)."""
        conn.execute(
            update(events)
            .where(events.c.id.in_(list(event_ids)))
            .values(status="decided", decided_at=self.clock(), lease_until=None, last_error=None)
        )

    def retry(self, event_id: str, error: str, delay: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(events)
                .where(events.c.id == event_id)
                .values(
                    status="pending",
                    not_before=self.clock() + delay,
                    lease_until=None,
                    last_error=error,
                )
            )

    def dead_letter(self, event_ids: Sequence[str], error: str, conn: Any | None = None) -> None:
        stmt = (
            update(events)
            .where(events.c.id.in_(list(event_ids)))
            .values(status="dead", lease_until=None, last_error=error)
        )
        if conn is not None:
            conn.execute(stmt)
            return
        with self.engine.begin() as own:
            own.execute(stmt)

    def replay(self, event_id: str) -> bool:
        """Send a dead-lettered (or decided) event through the worker again."""
        with self.engine.begin() as conn:
            count = conn.execute(
                update(events)
                .where(events.c.id == event_id, events.c.status.in_(["dead", "decided"]))
                .values(status="pending", attempts=0, not_before=0.0, last_error=None)
            ).rowcount
        return count == 1

    # --- reads for the API
    def get(self, event_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(events).where(events.c.id == event_id)).first()
            if row is None:
                return None
            decided = conn.execute(
                select(decision_events.c.decision_id).where(decision_events.c.event_id == event_id)
            ).scalars()
            return {**event_row_dict(row), "decisions": list(decided)}

    def list(
        self,
        source: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        stmt = select(events).order_by(events.c.received_at.desc(), events.c.id)
        for column, value in (
            (events.c.source, source),
            (events.c.kind, kind),
            (events.c.status, status),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.limit(limit).offset(offset)).all()
        return [event_row_dict(r) for r in rows]

    def depth(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.status, func.count()).group_by(events.c.status)
            ).all()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({status: n for status, n in rows})
        return counts

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(1))


def event_row_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "kind": row.kind,
        "subject": row.subject,
        "delivery_id": row.delivery_id,
        "received_at": row.received_at,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "decided_at": row.decided_at,
    }
