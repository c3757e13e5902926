"""The outbox sender's passes over a claimed batch (SQLite store, a scripted channel and clock):
a slow channel never makes a row be sent by two workers, and a failing channel costs one try
per pass instead of one per row, without holding up the other channels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from trigger_service.database import create_schema, make_engine, outbox, write
from trigger_service.errors import TemporaryError
from trigger_service.outbox import store
from trigger_service.outbox.sender import OutboxSender
from trigger_service.outbox.store import OutboxItem
from trigger_service.retrying import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Channel:
    """Records each delivery; `act` runs inside it (advance the clock, fail, ...)."""

    def __init__(self, name: str, act: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.name = name
        self.act = act
        self.delivered: list[int] = []
        self.tries = 0

    def deliver(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        self.tries += 1
        if self.act is not None:
            self.act(payload)
        self.delivered.append(payload["n"])
        return None


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    create_schema(made)
    yield made
    made.dispose()


def queue(engine: Engine, channel: str, n: int, now: float) -> None:
    item = OutboxItem(channel, f"{channel}:{n}", f"{channel}:{n}", {"n": n})
    with write(engine) as conn:
        store.enqueue(conn, item, now)


def sender(engine: Engine, channels: list[Channel], clock: Clock, worker: str) -> OutboxSender:
    return OutboxSender(
        engine,
        {c.name: c for c in channels},
        worker_id=worker,
        lease_seconds=120,
        backoff=Backoff(base_seconds=2, max_seconds=300),
        poll_seconds=1,
        clock=clock,
    )


def test_a_row_whose_lease_ran_out_behind_a_slow_one_is_not_sent_twice(engine: Engine) -> None:
    clock = Clock()
    for n in range(3):
        queue(engine, "github", n, clock.now)
    other_sent: list[int] = []

    def slow(payload: dict[str, Any]) -> None:
        clock.now += 100  # each call takes most of a lease (a forge near its timeout)
        if payload["n"] == 1:
            # Meanwhile a second worker finds row 2's lease (taken at 1000) expired and sends it.
            for row in store.claim(engine, "w2", 10, 120, clock.now):
                other_sent.append(row.payload["n"])
                store.delivered(engine, row.id, "w2", clock.now, None)

    channel = Channel("github", slow)
    sender(engine, [channel], clock, "w1").send_due()
    assert other_sent == [2]
    assert channel.delivered == [0, 1], "w1 does not send the row w2 took over"
    with engine.connect() as conn:
        assert set(conn.execute(select(outbox.c.state)).scalars()) == {"delivered"}


def test_a_failing_channel_is_tried_once_per_pass_and_the_others_still_go_out(
    engine: Engine,
) -> None:
    clock = Clock()
    for n in range(10):
        queue(engine, "gitea", n, clock.now)
    queue(engine, "github", 99, clock.now)

    def hangs(_payload: dict[str, Any]) -> None:
        clock.now += 10  # a read timeout
        raise TemporaryError("gitea: ReadTimeout", 30.0)

    gitea, github = Channel("gitea", hangs), Channel("github")
    one = sender(engine, [gitea, github], clock, "w1")
    one.send_due()
    assert gitea.tries == 1, "one timeout per pass, not one per row"
    assert github.delivered == [99]
    with engine.connect() as conn:
        rows = conn.execute(select(outbox).where(outbox.c.channel == "gitea")).all()
    assert {r.state for r in rows} == {"pending"}
    assert sorted(r.attempts for r in rows) == [0] * 9 + [1], "untried rows count no attempt"
    assert min(r.not_before for r in rows) >= 1000 + 10 + 30
    assert one.send_due() == 0, "nothing is due before the forge's delay"

    # More statuses for the failing forge meanwhile: put back untried until its retry time.
    for n in range(10, 15):
        queue(engine, "gitea", n, clock.now)
    queue(engine, "github", 100, clock.now)
    one.send_due()
    assert gitea.tries == 1 and github.delivered == [99, 100]
    clock.now += 31
    gitea.act = None  # the forge is back
    one.send_until_idle()
    assert sorted(gitea.delivered) == list(range(15)), "none lost"
