"""Leases: how workers take due rows of a table so that no two of them hold one row at once.

Three tables are worked this way (the inbox's `events`, the worker's `decisions`, `outbox`);
each names its state column and states once, as a `Leased`, and claims through `claim`:

    EVENTS = Leased(events, events.c.status, waiting="pending", held="claimed")
    rows = claim(engine, EVENTS, worker_id, limit=10, lease_seconds=60, now=clock(),
                 order_by=(events.c.received_at, events.c.id))
    update_if_held(conn, outbox, row.id, worker_id, lease_until=now + 60)  -> bool
    with kept_lease(engine, decisions, row.id, worker_id, 60, clock):  # extended while it works

A row is claimable when it is waiting and due (`not_before` passed) or held under a lease that
ran out (its worker died). The claim is one UPDATE ... WHERE id IN (due candidates) AND still
claimable, RETURNING the rows: on PostgreSQL the candidates are locked with FOR UPDATE SKIP
LOCKED, so concurrent claims pass over each other's rows; on SQLite the UPDATE takes the
database write lock. The claimable condition is checked again by the UPDATE itself, so a row
another worker took between the two is not taken twice. Each claim counts an attempt.

Every leased table has the columns `id`, `attempts`, `not_before`, `claimed_by` and
`lease_until` (epoch seconds). How a claim ends (settled, retried later, dead-lettered,
released) differs by table and stays with the table's owner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Engine, Table, and_, or_, select, update

from trigger_service.database import write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leased:
    """A table whose rows are claimed with leases: its state column, the state of a row that
    waits for a worker and the state of a row a worker holds."""

    table: Table
    state: Column[Any]
    waiting: str
    held: str
    stamped: bool = False  # the table has `updated_at`, set to the claim's time

    def claimable(self, now: float) -> ColumnElement[bool]:
        """Waiting and due at `now`, or held under a lease that ran out before `now`."""
        c = self.table.c
        return or_(
            and_(self.state == self.waiting, c.not_before <= now),
            and_(self.state == self.held, c.lease_until < now),
        )


def claim(
    engine: Engine,
    leased: Leased,
    worker_id: str,
    *,
    limit: int,
    lease_seconds: float,
    now: float,
    order_by: Sequence[ColumnElement[Any]],
    also: Sequence[ColumnElement[bool]] = (),
) -> list[Any]:
    """Take up to `limit` claimable rows, first in `order_by`, that also meet `also`: each is
    held by `worker_id` until `now + lease_seconds`, its attempts counted one up.

    Returns the claimed rows (every column, after the update) in no particular order; an empty
    list when none is due or other workers hold them all. Store errors propagate
    (SQLAlchemyError)."""
    table = leased.table
    claimable = leased.claimable(now)
    candidates = (
        select(table.c.id)
        .where(claimable, *also)
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    values: dict[str, Any] = {
        leased.state.name: leased.held,
        "claimed_by": worker_id,
        "lease_until": now + lease_seconds,
        "attempts": table.c.attempts + 1,
    }
    if leased.stamped:
        values["updated_at"] = now
    stmt = (
        update(table)
        .where(table.c.id.in_(candidates), claimable)
        .values(values)
        .returning(*table.c)
    )
    with write(engine) as conn:
        return list(conn.execute(stmt).all())


def update_if_held(
    conn: Connection,
    table: Table,
    row_id: Any,
    worker_id: str,
    *,
    also: Sequence[ColumnElement[bool]] = (),
    **values: Any,
) -> bool:
    """Set `values` on `row_id` (a new `lease_until`, or the claim's outcome) only if
    `worker_id` still holds it and `also` holds; False when it does not: another worker may
    have taken the row over, and what it holds is never written by the one that lost it."""
    changed = conn.execute(
        update(table)
        .where(table.c.id == row_id, table.c.claimed_by == worker_id, *also)
        .values(**values)
    ).rowcount
    return bool(changed)


@contextmanager
def kept_lease(
    engine: Engine,
    table: Table,
    row_id: str,
    worker_id: str,
    lease_seconds: float,
    clock: Callable[[], float],
) -> Iterator[None]:
    """Extend `table`'s row `row_id` (lease_until) every lease_seconds / 3 until the block ends.

    The lease stays exactly as long as the setting says while work goes on (a compile, a slow
    backend call); a crashed worker stops extending, so what it held is taken again one lease
    after its last extension, not after a fixed worst case."""
    done = threading.Event()
    every = max(lease_seconds / 3, 0.1)  # a zero lease must not spin

    def keep() -> None:
        while not done.wait(every):
            try:
                with write(engine) as conn:
                    update_if_held(
                        conn, table, row_id, worker_id, lease_until=clock() + lease_seconds
                    )
            except Exception as exc:  # the store is down: the next extension tries again
                log.warning("could not extend a lease: %r", exc, extra={"decision_id": row_id})

    keeper = threading.Thread(target=keep, name=f"lease-{row_id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join(timeout=lease_seconds)
