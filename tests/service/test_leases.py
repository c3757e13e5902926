"""The one claim (trigger_service/leases.py) under contention, for each table that uses it: many
workers claiming at once on SQLite and on a real PostgreSQL (when its binaries are here) hand
every due row to exactly one of them, once, and only its holder can extend its lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert

from tests.support.postgres import cluster_or_skip
from trigger_service import leases
from trigger_service.database import create_schema, decisions, events, make_engine, outbox, write
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.inbox import Inbox
from trigger_service.inbox.store import insert_events
from trigger_service.outbox import store
from trigger_service.outbox.store import OutboxItem
from trigger_service.worker.submitting import DECISION_LEASES

ROWS = 40
WORKERS = 6
# A claim: (engine, worker id, now) -> the rows it took.
Claim = Callable[[Engine, str, float], list[Any]]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with cluster_or_skip() as cluster:
        yield cluster.url


# PostgreSQL is where the race is real (SQLite has one writer); starting it makes the test slow.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    made = make_engine(url)
    create_schema(made)
    with made.begin() as conn:
        for table in (events, decisions, outbox):
            conn.execute(delete(table))
    yield made
    made.dispose()


def due_events(engine: Engine) -> Claim:
    received = datetime.fromtimestamp(1.0, UTC)
    batch = [
        Event(f"e{n}", EventKind.MANUAL, "manual", ManualSubject("songs"), received)
        for n in range(ROWS)
    ]
    with write(engine) as conn:
        insert_events(conn, batch)
    now = [0.0]
    inbox = Inbox(engine, clock=lambda: now[0])

    def claim(_engine: Engine, worker: str, at: float) -> list[Any]:
        now[0] = at
        return [claimed.event.id for claimed in inbox.claim(worker, 3, lease_seconds=60)]

    return claim


def due_decisions(engine: Engine) -> Claim:
    with write(engine) as conn:
        for n in range(ROWS):
            conn.execute(
                insert(decisions).values(
                    id=f"d{n}", created_at=1.0, updated_at=1.0, outcome="run", state="ready",
                    reason="test", due_at=float(n), attempts=0, not_before=0.0,
                )
            )  # fmt: skip

    def claim(engine: Engine, worker: str, now: float) -> list[Any]:
        rows = leases.claim(
            engine, DECISION_LEASES, worker, limit=3, lease_seconds=60, now=now,
            order_by=(decisions.c.due_at,),
        )  # fmt: skip
        return [r.id for r in rows]

    return claim


def due_deliveries(engine: Engine) -> Claim:
    with write(engine) as conn:
        for n in range(ROWS):  # each its own ordering: none waits for another
            store.enqueue(conn, OutboxItem("github", f"k{n}", f"o{n}", {"n": n}), now=1.0)
    return lambda engine, worker, now: [r.id for r in store.claim(engine, worker, 3, 60, now)]


TABLES = {"events": due_events, "decisions": due_decisions, "outbox": due_deliveries}


@pytest.mark.parametrize("table", TABLES)
def test_workers_claiming_at_once_each_get_different_rows_and_all_of_them(
    engine: Engine, table: str
) -> None:
    claim = TABLES[table](engine)
    taken: dict[str, list[Any]] = {f"w{n}": [] for n in range(WORKERS)}
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            start.wait()
            deadline = time.monotonic() + 30
            while sum(len(rows) for rows in taken.values()) < ROWS:
                assert time.monotonic() < deadline, "claims stalled"
                taken[worker].extend(claim(engine, worker, 10.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    everything = [row for rows in taken.values() for row in rows]
    assert len(everything) == ROWS, "a row was handed to two workers (or one was missed)"
    assert len(set(everything)) == ROWS
    assert claim(engine, "late", 20.0) == [], "every row is held until its lease runs out"
    again = claim(engine, "late", 71.0)  # 10 + 60 s later: every lease has run out
    assert again and set(again) <= set(everything)


@pytest.mark.parametrize("table", [events, decisions, outbox], ids=lambda t: t.name)
def test_only_the_holder_moves_a_lease(engine: Engine, table: Any) -> None:
    claim = TABLES[table.name](engine)
    (first, *_) = claim(engine, "holder", 10.0)
    with write(engine) as conn:
        assert not leases.update_if_held(conn, table, first, "other", lease_until=500.0)
        assert leases.update_if_held(conn, table, first, "holder", lease_until=500.0)
        lease_until = conn.execute(table.select().where(table.c.id == first)).one().lease_until
    assert lease_until == 500.0
