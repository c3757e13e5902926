"""A lease that stays exactly as long as the setting says, and is extended while work goes on.

    with kept_lease(engine, decisions, row.id, worker_id, lease_seconds, clock):
        ...  # a compile or a slow backend call: the lease moves forward every third of it

A crashed worker stops extending, so what it held is taken again one lease after its last
extension, not after a fixed worst case. The extension only touches a row this worker still
holds (claimed_by), so a lease someone else took over is never stolen back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, Table, update

from trigger_service.database import write

log = logging.getLogger(__name__)


@contextmanager
def kept_lease(
    engine: Engine,
    table: Table,
    row_id: str,
    worker_id: str,
    lease_seconds: float,
    clock: Callable[[], float],
) -> Iterator[None]:
    """Extend `table`'s row `row_id` (lease_until) every lease_seconds / 3 until the block ends."""
    done = threading.Event()
    every = max(lease_seconds / 3, 0.1)  # a zero lease must not spin

    def extend() -> None:
        while not done.wait(every):
            try:
                with write(engine) as conn:
                    conn.execute(
                        update(table)
                        .where(table.c.id == row_id, table.c.claimed_by == worker_id)
                        .values(lease_until=clock() + lease_seconds)
                    )
            except Exception as exc:  # the store is down: the next extension tries again
                log.warning("could not extend a lease: %r", exc, extra={"decision_id": row_id})

    keeper = threading.Thread(target=extend, name=f"lease-{row_id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join(timeout=lease_seconds)
