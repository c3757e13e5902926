"""The outbox table on both stores (SQLite, and a real PostgreSQL when its binaries are here):
idempotent per key, newer statuses supersede unsent older ones, one ordering goes out in order,
two workers never hold one row, and a lost lease (kill -9) hands the row to another."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select

from tests.support.postgres import cluster_or_skip
from trigger_service.database import create_schema, make_engine, outbox, write
from trigger_service.outbox import store
from trigger_service.outbox.store import OutboxItem


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with cluster_or_skip() as cluster:
        yield cluster.url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'outbox.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    made = make_engine(url)
    create_schema(made)
    with made.begin() as conn:
        conn.execute(delete(outbox))
    yield made
    made.dispose()


def status(sha: str, state: str, text: str = "") -> OutboxItem:
    where = f"status:github:team/songs:{sha}:retrain/songs"
    payload = {"sha": sha, "state": state, "description": text}
    return OutboxItem("github", f"{where}:{state}", where, payload)


def enqueue(engine: Engine, item: OutboxItem, now: float = 0.0, supersede: bool = True) -> bool:
    with write(engine) as conn:
        return store.enqueue(conn, item, now, supersede=supersede)


def states(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.key, outbox.c.state).order_by(outbox.c.id))
        return [(r.key.rsplit(":", 1)[-1], r.state) for r in rows]


def test_the_same_item_twice_is_one_row_and_a_new_text_replaces_it(engine: Engine) -> None:
    assert enqueue(engine, status("a", "pending", "queued behind run r-1"))
    assert not enqueue(engine, status("a", "pending", "queued behind run r-1"))
    (row,) = store.claim(engine, "w1", 10, 60, now=1)
    store.delivered(engine, row.id, "w1", 2, {"id": 1})
    assert not enqueue(engine, status("a", "pending", "queued behind run r-1")), "delivered"
    assert enqueue(engine, status("a", "pending", "training: run r-2 started"))
    assert states(engine) == [("pending", "pending")]
    (again,) = store.claim(engine, "w1", 10, 60, now=3)
    assert again.payload["description"] == "training: run r-2 started"


def test_a_newer_status_supersedes_an_unsent_one_and_waits_for_one_in_flight(
    engine: Engine,
) -> None:
    enqueue(engine, status("a", "pending"))
    enqueue(engine, status("a", "success"))
    assert states(engine) == [("pending", "superseded"), ("success", "pending")]
    (sending,) = store.claim(engine, "w1", 10, 60, now=1)
    enqueue(engine, status("a", "failure"))  # a newer state while "success" is in flight
    assert store.claim(engine, "w2", 10, 60, now=2) == [], "in order: after the one in flight"
    store.delivered(engine, sending.id, "w1", 3, None)
    (last,) = store.claim(engine, "w2", 10, 60, now=4)
    assert last.payload["state"] == "failure"


def test_one_model_in_order_and_two_workers_never_share_a_row(engine: Engine) -> None:
    for version in (1, 2, 3):
        item = OutboxItem("mlflow", f"register:songs:{version}", "registry:songs", {"v": version})
        enqueue(engine, item, supersede=False)
    for n in range(5):
        enqueue(engine, status(f"{n:040x}", "success"))
    first = store.claim(engine, "w1", 3, 60, now=1)
    second = store.claim(engine, "w2", 10, 60, now=1)
    assert not {r.id for r in first} & {r.id for r in second}
    claimed = [r.payload.get("v") for r in first + second if r.channel == "mlflow"]
    assert claimed == [1], "versions 2 and 3 wait until 1 is registered"
    assert len(first) + len(second) == 6


def test_a_lost_lease_hands_the_row_to_another_worker_and_the_first_cannot_settle(
    engine: Engine,
) -> None:
    enqueue(engine, status("a", "success"))
    (row,) = store.claim(engine, "w1", 10, lease_seconds=30, now=100)
    assert store.claim(engine, "w2", 10, 30, now=120) == []
    (taken,) = store.claim(engine, "w2", 10, 30, now=131)  # w1 was killed: its lease ran out
    assert taken.id == row.id and taken.attempts == 2
    assert not store.delivered(engine, row.id, "w1", 132, None), "w1 no longer holds it"
    assert store.retry_later(engine, row.id, "w2", 132, 10, "HTTP 503")
    assert store.claim(engine, "w1", 10, 30, now=141) == []
    (due,) = store.claim(engine, "w1", 10, 30, now=143)
    assert due.last_error == "HTTP 503"


def test_two_writers_of_one_key_at_once_make_one_row_and_both_commit(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the race cannot happen there")
    item = status("a", "success", "model songs v3 published")
    with engine.connect() as first, engine.connect() as second:
        first_tx, second_tx = first.begin(), second.begin()
        assert store.enqueue(first, item, 1.0)
        threading.Timer(0.5, first_tx.commit).start()
        # The second looked before the first committed, so it inserts too: it waits for the
        # first, then does nothing instead of failing the change it reports.
        assert not store.enqueue(second, item, 1.0)
        second_tx.commit()
    assert states(engine) == [("success", "pending")]


def test_settled_rows_are_purged_after_their_keep_time_and_open_ones_never(
    engine: Engine,
) -> None:
    enqueue(engine, status("a", "pending"), now=0)
    enqueue(engine, status("a", "success"), now=10)  # supersedes the pending one
    enqueue(engine, status("b", "success"), now=10)
    (sent, _waiting) = store.claim(engine, "w1", 10, 60, now=20)
    store.delivered(engine, sent.id, "w1", 30, None)
    assert store.purge(engine, settled_before=5) == 0
    assert store.purge(engine, settled_before=100) == 2, "superseded and delivered"
    assert states(engine) == [("success", "sending")], "the one in flight stays"
