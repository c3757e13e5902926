"""Durable, idempotent event store with claims that are safe across processes.

Insert is idempotent on Event.id (ON CONFLICT DO NOTHING), so a redelivery stores nothing new.
A claim moves pending events to `claimed` with a lease (trigger_service/leases.py: FOR UPDATE
SKIP LOCKED on PostgreSQL, the write lock on SQLite). An expired lease (a worker that died
mid-decision) makes the event claimable again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import JSON, Connection, Engine, bindparam, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from trigger_service import leases
from trigger_service.database import events, write, write_now
from trigger_service.errors import TemporaryError, TriggerError
from trigger_service.events import Event, EventKind, subject_from_dict, subject_to_dict
from trigger_service.keys import fit
from trigger_service.store_errors import StoreUnavailable, as_domain_error, classify
from trigger_service.store_health import StoreHealth

log = logging.getLogger(__name__)
Clock = Callable[[], float]
STATUSES = ("pending", "claimed", "decided", "dead")
DELIVERY_ID_WIDTH = 256  # events.delivery_id is String(256)
EVENT_LEASES = leases.Leased(events, events.c.status, waiting="pending", held="claimed")


@dataclass(frozen=True)
class StoreResult:
    event_id: str
    new: bool


@dataclass(frozen=True)
class ClaimedEvent:
    event: Event
    attempts: int


# Written out once: SQLite and PostgreSQL share this syntax, and a text() statement is compiled
# once, where a Core insert with ON CONFLICT is compiled on every request.
INSERT_EVENT = text(
    "INSERT INTO events (id, source, kind, subject, delivery_id, received_at, status, attempts,"
    " not_before) VALUES (:id, :source, :kind, :subject, :delivery_id, :received_at,"
    " 'pending', 0, 0) ON CONFLICT (id) DO NOTHING RETURNING id"
).bindparams(bindparam("subject", type_=JSON))


def delivery_key(delivery_id: str | None) -> str | None:
    """The sender's delivery id as stored: verbatim up to the column's width, else a key for
    it (the event id is derived from the whole id either way)."""
    return None if delivery_id is None else fit(delivery_id, DELIVERY_ID_WIDTH)


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


# SQLite's own driver, straight: a third of the CPU of the same statement through SQLAlchemy,
# and this runs once per delivery.
SQLITE_INSERT_EVENT = (
    "INSERT INTO events (id, source, kind, subject, delivery_id, received_at, status, attempts,"
    " not_before) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, 0) ON CONFLICT (id) DO NOTHING"
    " RETURNING id"
)


def insert_sqlite(connection: sqlite3.Connection, batch: Sequence[Event]) -> list[StoreResult]:
    cursor = connection.cursor()
    return [
        StoreResult(
            event.id,
            cursor.execute(
                SQLITE_INSERT_EVENT,
                (
                    event.id,
                    event.source,
                    event.kind.value,
                    json.dumps(subject_to_dict(event.subject)),
                    delivery_key(event.delivery_id),
                    event.received_at.timestamp(),
                ),
            ).fetchone()
            is not None,
        )
        for event in batch
    ]


def insert_events(conn: Connection, batch: Sequence[Event]) -> list[StoreResult]:
    if conn.dialect.name == "sqlite":
        return insert_sqlite(conn.connection.driver_connection, batch)  # type: ignore[arg-type]
    results = []
    for event in batch:
        inserted = conn.execute(
            INSERT_EVENT,
            {
                "id": event.id,
                "source": event.source,
                "kind": event.kind.value,
                "subject": subject_to_dict(event.subject),
                "delivery_id": delivery_key(event.delivery_id),
                "received_at": event.received_at.timestamp(),
            },
        ).first()
        results.append(StoreResult(event.id, inserted is not None))
    return results


def _settle_from_thread(
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[list[StoreResult]],
    stored: Future[list[StoreResult]],
) -> None:
    loop.call_soon_threadsafe(_settle, stored, done)


def _settle(stored: Future[list[StoreResult]], done: asyncio.Future[list[StoreResult]]) -> None:
    if done.cancelled():
        return
    error = stored.exception()
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(stored.result())


@contextmanager
def _unavailable_as_temporary() -> Iterator[None]:
    try:
        yield
    except TriggerError:
        raise
    except (SQLAlchemyError, sqlite3.Error) as exc:
        # The store is down, locked or full: a 503 the sender retries, never a 500.
        raise as_domain_error(exc) from exc


@dataclass
class _Delivery:
    batch: Sequence[Event]
    done: Future[list[StoreResult]]
    deadline: float  # time.monotonic(): past it, the sender has had its 503


class GroupCommitWriter:
    """Deliveries waiting together are committed together: one transaction, one fsync.

    The slow path of the inbox: callers that may block (the sync `store`, or the event loop when
    the database is busy) hand their events to this one thread and wait for the commit; it takes
    everything waiting (up to `max_group` deliveries) into one transaction. If a group fails on
    one bad delivery, each delivery is retried alone, so it fails only its own request; if the
    store itself fails (locked, full, gone), the whole group fails at once. A result is set only
    after its commit. The thread never dies of an error: if it does anyway, `alive` says so and
    the process is not ready.
    """

    def __init__(
        self,
        engine: Engine,
        max_group: int = 256,
        timeout: float = 30.0,
        health: StoreHealth | None = None,
    ) -> None:
        self.engine = engine
        self.max_group = max_group
        self.timeout = timeout
        self.health = health
        self._queue: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="inbox-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, batch: Sequence[Event]) -> Future[list[StoreResult]]:
        done: Future[list[StoreResult]] = Future()
        if not self.alive:
            done.set_exception(StoreUnavailable("the inbox writer thread is not running"))
            return done
        self._queue.put(_Delivery(batch, done, time.monotonic() + self.timeout))
        return done

    def _loop(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self.max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit_group(group)
            except BaseException as exc:  # the writer must outlive any one group
                for delivery in group:
                    _fail(delivery.done, exc)
                log.exception("inbox writer: a commit group failed unexpectedly")

    def _commit_group(self, group: list[_Delivery]) -> None:
        now = time.monotonic()
        late = [d for d in group if d.deadline <= now]
        for delivery in late:  # its sender already had a 503: storing it now helps nobody
            _fail(delivery.done, StoreUnavailable("timed out waiting for the store"))
        group = [d for d in group if d.deadline > now]
        if not group:
            return
        try:
            with write(self.engine) as conn:
                results = [insert_events(conn, d.batch) for d in group]
            self._committed()
        except Exception as exc:
            domain = classify(exc)
            if isinstance(domain, TemporaryError) or len(group) == 1:
                if self.health is not None:
                    self.health.failed(exc)
                for delivery in group:
                    _fail(delivery.done, as_domain_error(exc))
                return
            for delivery in group:  # one bad delivery: each alone, so it fails only itself
                self._store_alone(delivery)
            return
        for delivery, result in zip(group, results, strict=True):
            _succeed(delivery.done, result)

    def _store_alone(self, delivery: _Delivery) -> None:
        try:
            with write(self.engine) as conn:
                result = insert_events(conn, delivery.batch)
            self._committed()
        except Exception as exc:
            if self.health is not None:
                self.health.failed(exc)
            _fail(delivery.done, as_domain_error(exc))
            return
        _succeed(delivery.done, result)  # only now, after the commit

    def _committed(self) -> None:
        if self.health is not None:
            self.health.verify_file()  # a commit into a deleted file is no commit
            self.health.succeeded()


def _succeed(done: Future[list[StoreResult]], result: list[StoreResult]) -> None:
    if not done.done():
        done.set_result(result)


def _fail(done: Future[list[StoreResult]], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)


class Inbox:
    def __init__(
        self,
        engine: Engine,
        clock: Clock = time.time,
        *,
        timeout: float = 30.0,
        health: StoreHealth | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.timeout = timeout
        self.health = health
        self._writer = GroupCommitWriter(engine, timeout=timeout, health=health)
        self._pending: list[tuple[Sequence[Event], asyncio.Future[list[StoreResult]]]] = []

    @property
    def writer_alive(self) -> bool:
        return self._writer.alive

    # --- the request path: store, then acknowledge
    def store(self, batch: Sequence[Event]) -> list[StoreResult]:
        """Store every event of one delivery; returns which ids were new, once committed.

        Raises StoreUnavailable (a TemporaryError) when the store cannot commit within the
        store timeout, RejectedInput when a value can never be stored."""
        with _unavailable_as_temporary():
            try:
                return self._writer.submit(batch).result(self.timeout + 1.0)
            except FutureTimeout:
                raise StoreUnavailable("timed out waiting for the store") from None

    async def store_async(self, batch: Sequence[Event]) -> list[StoreResult]:
        """The same for the request path, awaited without holding a thread.

        Deliveries arriving in the same loop iteration commit together. On SQLite with the
        database free, the commit runs right on the event loop (cheapest, no thread hand-off);
        when a writer holds it, or on PostgreSQL, the writer thread waits instead of the loop.
        No answer waits longer than the store timeout: then it is a 503, never a hang.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[StoreResult]] = loop.create_future()
        self._pending.append((batch, done))
        if len(self._pending) == 1:
            loop.call_soon(self._flush, loop)
        with _unavailable_as_temporary():
            try:
                async with asyncio.timeout(self.timeout + 1.0):
                    return await done
            except TimeoutError:
                raise StoreUnavailable("timed out waiting for the store") from None

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        group, self._pending = self._pending, []
        results = None
        try:
            with write_now(self.engine) as connection:
                if connection is not None:
                    results = [insert_sqlite(connection, batch) for batch, _ in group]
            if results is not None and self.health is not None:
                self.health.verify_file()  # a commit into a deleted file is no commit
        except StoreUnavailable as exc:
            for _, done in group:
                if not done.done():
                    done.set_exception(exc)
            return
        except Exception:
            results = None  # busy (another process) or failed: the writer thread takes it
        if results is not None:  # committed: only now may the senders hear 2xx
            for (_, done), result in zip(group, results, strict=True):
                if not done.done():  # a sender that hung up has a cancelled future
                    done.set_result(result)
            return
        for batch, done in group:
            stored = self._writer.submit(batch)
            stored.add_done_callback(partial(_settle_from_thread, loop, done))

    # --- the worker
    def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[ClaimedEvent]:
        """Hold up to `limit` due events, oldest first, for `lease_seconds` (see leases.py)."""
        rows = leases.claim(
            self.engine,
            EVENT_LEASES,
            worker_id,
            limit=limit,
            lease_seconds=lease_seconds,
            now=self.clock(),
            order_by=(events.c.received_at, events.c.id),
        )
        rows.sort(key=lambda r: (r.received_at, r.id))
        return [ClaimedEvent(row_to_event(r), r.attempts) for r in rows]

    def finish(self, event_ids: Sequence[str], conn: Any) -> None:
        """Mark decided, inside the caller's transaction (the one recording the decisions)."""
        conn.execute(
            update(events)
            .where(events.c.id.in_(list(event_ids)))
            .values(status="decided", decided_at=self.clock(), lease_until=None, last_error=None)
        )

    def retry(self, event_id: str, error: str, delay: float) -> None:
        with write(self.engine) as conn:
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
        if conn is not None:
            dead_letter(conn, event_ids, error)
            return
        with write(self.engine) as own:
            dead_letter(own, event_ids, error)

    def replay(self, event_id: str) -> bool:
        """Send a dead-lettered (or decided) event through the worker again."""
        with write(self.engine) as conn:
            count = conn.execute(
                update(events)
                .where(events.c.id == event_id, events.c.status.in_(["dead", "decided"]))
                .values(status="pending", attempts=0, not_before=0.0, last_error=None)
            ).rowcount
        return count == 1

    # --- reads for the API
    def get(self, event_id: str) -> dict[str, Any] | None:
        """One event as `event_row_dict` shapes it (the decisions it ended in are the worker's:
        `worker.queries.decisions_of_event`), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(events).where(events.c.id == event_id)).first()
        return event_row_dict(row) if row is not None else None

    def all_stored(self, event_ids: Sequence[str]) -> bool:
        """True when every id in `event_ids` is a committed event."""
        with _unavailable_as_temporary(), self.engine.connect() as conn:
            found = conn.execute(
                select(func.count()).select_from(events).where(events.c.id.in_(list(event_ids)))
            ).scalar_one()
        return int(found) == len(set(event_ids))

    def get_event(self, event_id: str) -> Event | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(events).where(events.c.id == event_id)).first()
        return row_to_event(row) if row is not None else None

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


def dead_letter(conn: Connection, event_ids: Sequence[str], error: str) -> None:
    """Mark events dead with `error`, in the caller's transaction (the worker's, when a
    decision they ended in is dead-lettered)."""
    conn.execute(
        update(events)
        .where(events.c.id.in_(list(event_ids)))
        .values(status="dead", lease_until=None, last_error=error)
    )


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
