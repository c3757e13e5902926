"""The reconcile stage's tables: which object versions a listing has accounted for, and when
each listed trigger is due. The only writer of `seen_objects` and `reconcile_state`.

    scope_of(trigger, bucket, prefix) -> str
    claim_pass(engine, ...) -> Claim | None   this process lists now; None: not due, or taken
    record_chunk(engine, scope, chunk, baseline, now) -> Recorded
    finish_pass / release_pass / fail_pass / next_due_at

A pass is claimed by moving `next_due` forward in one UPDATE, so of several worker processes on
one PostgreSQL exactly one lists a trigger each interval. A chunk's new events and its seen rows
commit in one transaction: a crash in between can only make the next pass offer the same events
again, and the inbox, idempotent on Event id, stores them once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, func, select, text, update

from trigger_service.database import reconcile_state, seen_objects, write
from trigger_service.events import Event
from trigger_service.inbox.store import insert_events

INSERT_STATE = text(
    "INSERT INTO reconcile_state (scope, trigger, bucket, prefix, next_due, failures)"
    " VALUES (:scope, :trigger, :bucket, :prefix, 0, 0) ON CONFLICT (scope) DO NOTHING"
)
INSERT_SEEN = text(
    "INSERT INTO seen_objects (scope, id, seen_at) VALUES (:scope, :id, :seen_at)"
    " ON CONFLICT (scope, id) DO NOTHING"
)


@dataclass(frozen=True)
class Claim:
    scope: str
    baselined: bool  # False: this is (still) the trigger's first complete listing
    last_listed_at: float | None  # when the last complete pass (by any process) ended


def scope_of(trigger: str, bucket: str, prefix: str) -> str:
    """One listing state per trigger, bucket and prefix: changing either starts a new baseline."""
    return hashlib.sha256("\x1f".join((trigger, bucket, prefix)).encode()).hexdigest()[:40]


def claim_pass(
    engine: Engine, trigger: str, bucket: str, prefix: str, now: float, lease_seconds: float
) -> Claim | None:
    """Take the pass if it is due: `next_due` moves to now + lease (a crashed lister's pass is
    taken again after that)."""
    scope = scope_of(trigger, bucket, prefix)
    with write(engine) as conn:
        conn.execute(
            INSERT_STATE, {"scope": scope, "trigger": trigger, "bucket": bucket, "prefix": prefix}
        )
        row = conn.execute(
            update(reconcile_state)
            .where(reconcile_state.c.scope == scope, reconcile_state.c.next_due <= now)
            .values(next_due=now + lease_seconds)
            .returning(reconcile_state.c.baselined_at, reconcile_state.c.last_listed_at)
        ).first()
    if row is None:
        return None
    return Claim(scope, row.baselined_at is not None, row.last_listed_at)


@dataclass(frozen=True)
class Recorded:
    unseen: int  # object versions no listing had accounted for
    new_events: int  # of those, events the inbox did not hold yet (no notification came)


def record_chunk(
    engine: Engine, scope: str, chunk: Sequence[tuple[Event, bool]], baseline: bool, now: float
) -> Recorded:
    """Remember every listed object version of `chunk` for `scope`; store as events, in the same
    transaction, those `scope` had not seen that are live, unless this is a skipped baseline.

    `chunk`: (event, live) pairs. An object whose notification arrived is already in the inbox:
    unseen by the listing, but not a new event."""
    by_id = {event.id: (event, live) for event, live in chunk}
    if not by_id:
        return Recorded(0, 0)
    with write(engine) as conn:
        known = set(
            conn.execute(
                select(seen_objects.c.id).where(
                    seen_objects.c.scope == scope,
                    seen_objects.c.id.in_(bindparam("ids", expanding=True)),
                ),
                {"ids": list(by_id)},
            ).scalars()
        )
        unseen = [event_id for event_id in by_id if event_id not in known]
        if not unseen:
            return Recorded(0, 0)
        fresh = [] if baseline else [by_id[i][0] for i in unseen if by_id[i][1]]
        stored = insert_events(conn, fresh) if fresh else []
        conn.execute(
            INSERT_SEEN, [{"scope": scope, "id": event_id, "seen_at": now} for event_id in unseen]
        )
    return Recorded(len(unseen), sum(1 for result in stored if result.new))


def finish_pass(engine: Engine, scope: str, now: float, next_due: float, objects: int) -> None:
    """A complete listing: the baseline (if this was the first) is done; next pass at next_due."""
    with write(engine) as conn:
        conn.execute(
            update(reconcile_state)
            .where(reconcile_state.c.scope == scope)
            .values(
                next_due=next_due,
                last_listed_at=now,
                last_objects=objects,
                failures=0,
                last_error=None,
                baselined_at=func.coalesce(reconcile_state.c.baselined_at, now),
            )
        )


def release_pass(engine: Engine, scope: str, due: float) -> None:
    """Give a claimed pass back unfinished (the process is stopping): due again at `due`."""
    with write(engine) as conn:
        conn.execute(
            update(reconcile_state).where(reconcile_state.c.scope == scope).values(next_due=due)
        )


def fail_pass(engine: Engine, scope: str, error: str, retry_at: float) -> int:
    """Record a failed listing; returns how many passes in a row have failed."""
    with write(engine) as conn:
        row = conn.execute(
            update(reconcile_state)
            .where(reconcile_state.c.scope == scope)
            .values(
                next_due=retry_at,
                failures=reconcile_state.c.failures + 1,
                last_error=error[:2000],
            )
            .returning(reconcile_state.c.failures)
        ).first()
    return int(row.failures) if row is not None else 1


def earlier_listing(engine: Engine, trigger: str, scope: str) -> tuple[str, str, float] | None:
    """(bucket, prefix, when it was last listed completely) of `trigger`'s newest other scope:
    the trigger's bucket or prefix changed since. None when it has no other listed scope."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                reconcile_state.c.bucket, reconcile_state.c.prefix, reconcile_state.c.last_listed_at
            )
            .where(
                reconcile_state.c.trigger == trigger,
                reconcile_state.c.scope != scope,
                reconcile_state.c.last_listed_at.is_not(None),
            )
            .order_by(reconcile_state.c.last_listed_at.desc())
            .limit(1)
        ).first()
    return None if row is None else (row.bucket, row.prefix, float(row.last_listed_at))


def failures_of(engine: Engine, scope: str) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            select(reconcile_state.c.failures).where(reconcile_state.c.scope == scope)
        ).scalar()
    return int(value or 0)


def next_due_at(engine: Engine, scope: str) -> float | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(reconcile_state.c.next_due).where(reconcile_state.c.scope == scope)
        ).scalar()
    return None if value is None else float(value)
