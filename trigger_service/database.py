"""The store's schema and engine: one SQLAlchemy Core metadata shared by every stage.

SQLite (WAL, busy timeout) is the embedded default; PostgreSQL is the shared store for several
replicas. Times are stored as float epoch seconds (UTC) so both dialects compare them the same.

Each table is written by one stage, through that stage's functions (`WRITERS`, at the end;
tests/test_layout.py fails when another module inserts, updates or deletes its rows). Others
read it through the owning stage's query functions (the few direct reads, with their reasons:
`FOREIGN_READS` in that test). The tables:
    events             what senders told us, and where each event is in the flow
    decisions          run / no run, with the reason
    decision_events    which events each decision covers
    pipeline_versions  versions registered with the backend, by commit
    current_versions   which version each branch runs now, and why
    runs, run_states   submitted runs and every state they passed through
    seen_objects       object versions a bucket listing has already accounted for
    reconcile_state    per listed trigger: baseline done, next pass, last error
    store_probes       one row per process: the write that proves the store works
    trigger_pauses     triggers an operator paused (their events decide no run)
    outbox             what to tell other systems (commit statuses, model registrations),
                       written with the change it reports; the worker's outbox sender
                       delivers it
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", JSON, nullable=False),
    Column("delivery_id", String(256)),
    Column("received_at", Float, nullable=False),
    # pending -> claimed -> decided | dead (claimed -> pending again on a temporary error)
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", Float, nullable=False, default=0.0),
    Column("claimed_by", String(128)),
    Column("lease_until", Float),
    Column("last_error", Text),
    Column("decided_at", Float),
)
Index("ix_events_claim", events.c.status, events.c.not_before)
# Newest first (/events, the console's timeline): without it each read sorts the whole table.
EVENTS_BY_TIME = Index("ix_events_received", events.c.received_at)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("trigger", String(128)),
    Column("pipeline", String(128)),
    # run: a run is (or will be) submitted; no_run: nothing happens, see reason
    Column("outcome", String(16), nullable=False),
    # run decisions: collecting -> ready | queued | suppressed | merged; ready -> submitting
    # -> submitted | dead; submitted -> its run's final state (succeeded | failed | canceled |
    # recorded). no_run decisions: done.
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("scope", String(256)),  # what coalesces: pipeline + trigger + batch key
    Column("version", String(128)),
    Column("version_request", JSON),
    Column("params", JSON),
    Column("policy", JSON),
    Column("event_count", Integer, nullable=False, default=0),
    Column("first_event_at", Float),
    Column("due_at", Float),  # when a collecting decision fires (debounce / max wait)
    Column("idempotency_key", String(128), unique=True),
    Column("run_id", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", Float, nullable=False, default=0.0),
    Column("claimed_by", String(128)),
    Column("lease_until", Float),
    Column("last_error", Text),
)
# At most one collecting decision per scope and one queued decision per pipeline, even when
# several processes decide at once: the database refuses the second.
Index(
    "uq_decisions_collecting",
    decisions.c.scope,
    unique=True,
    sqlite_where=decisions.c.state == "collecting",
    postgresql_where=decisions.c.state == "collecting",
)
Index(
    "uq_decisions_queued",
    decisions.c.pipeline,
    unique=True,
    sqlite_where=decisions.c.state == "queued",
    postgresql_where=decisions.c.state == "queued",
)
Index("ix_decisions_state", decisions.c.state, decisions.c.due_at)

# Which decisions each event ended in (usually one; an event matching two pipelines, two).
decision_events = Table(
    "decision_events",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("at", Float, nullable=False),
    # The event's own cause, kept when decisions coalesce or merge (NULL: stored before these).
    Column("trigger", String(128)),
    Column("reason", Text),
)
Index("ix_decision_events_event", decision_events.c.event_id)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("pipeline", String(128), primary_key=True),
    Column("version", String(128), primary_key=True),
    Column("commit", String(64)),
    Column("branch", String(256)),
    Column("package_path", Text),
    Column("package_sha256", String(64)),
    Column("backend_pipeline_id", String(128)),
    Column("backend_version_id", String(128)),
    Column("created_at", Float, nullable=False),
    Column("reason", Text),
)

current_versions = Table(
    "current_versions",
    metadata,
    Column("pipeline", String(128), primary_key=True),
    Column("branch", String(256), primary_key=True),
    Column("version", String(128), nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("event_id", String(128)),
    Column("reason", Text),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("decision_id", String(64), nullable=False, unique=True),
    Column("backend", String(16), nullable=False),
    Column("pipeline", String(128), nullable=False),
    Column("version", String(128)),
    Column("params", JSON),
    Column("run_name", String(256), nullable=False),
    Column("external_id", String(128)),
    Column("url", Text),
    # submitting -> pending -> running -> succeeded | failed | canceled | lost (404 there);
    # shadow: -> recorded
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("log_path", Text),
    Column("failed_step", String(128)),
    Column("error", Text),
    Column("model_name", String(128)),
    Column("model_version", Integer),
    Column("result", JSON),
)
Index("ix_runs_state", runs.c.state)

run_states = Table(
    "run_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("detail", Text),
)

# Per listing scope: a trigger's first listing (its baseline) must not hide from another
# trigger's listing an object that trigger has not accounted for yet.
seen_objects = Table(
    "seen_objects",
    metadata,
    Column("scope", String(64), primary_key=True),  # reconcile_state.scope
    Column("id", String(128), primary_key=True),  # the object version's Event id
    Column("seen_at", Float, nullable=False),
)
trigger_pauses = Table(
    "trigger_pauses",
    metadata,
    Column("trigger", String(128), primary_key=True),
    Column("paused_at", Float, nullable=False),
    Column("reason", Text),
)


reconcile_state = Table(
    "reconcile_state",
    metadata,
    Column("scope", String(64), primary_key=True),  # hash of trigger, bucket and prefix
    Column("trigger", String(128), nullable=False),
    Column("bucket", String(256), nullable=False),
    Column("prefix", Text, nullable=False),
    Column("baselined_at", Float),  # None: the first complete listing has not happened yet
    Column("next_due", Float, nullable=False, default=0.0),
    Column("last_listed_at", Float),
    Column("last_objects", Integer),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_error", Text),
)


# Written by the store's health probe (trigger_service.store_health), read by nobody else.
store_probes = Table(
    "store_probes",
    metadata,
    Column("owner", String(128), primary_key=True),
    Column("at", Float, nullable=False),
)

# The transactional outbox: a row is written in the transaction of the state change it reports
# and delivered later by the worker's sender (never in the request path). `key` makes it
# idempotent (one row per commit+context+state, per model+version); rows of one `ordering`
# go out in id order, so a forge never sees "pending" after "success".
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(256), nullable=False, unique=True),
    Column("channel", String(32), nullable=False),  # the plug-in: github, gitlab, mlflow, ...
    Column("ordering", String(256), nullable=False),
    Column("payload", JSON, nullable=False),
    # pending -> sending -> delivered | dropped; pending -> superseded (a newer status won)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", Float, nullable=False, default=0.0),
    Column("claimed_by", String(128)),
    Column("lease_until", Float),
    Column("last_error", Text),
    Column("result", JSON),
    Column("run_id", String(64)),
    Column("decision_id", String(64)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("delivered_at", Float),
)
Index("ix_outbox_due", outbox.c.state, outbox.c.not_before)
Index("ix_outbox_ordering", outbox.c.ordering, outbox.c.state)
Index("ix_outbox_run", outbox.c.run_id)

# Each table's one writer: the package (or module) whose functions insert, update and delete
# its rows. Another stage calls them; tests/test_layout.py scans the source and fails on any
# other writer.
WRITERS = {
    "events": "trigger_service.inbox",  # reconcile stores listed objects through the inbox
    "decisions": "trigger_service.worker",  # a run's final state too (decisions.follow_run)
    "decision_events": "trigger_service.worker",
    "pipeline_versions": "trigger_service.versions",
    "current_versions": "trigger_service.versions",
    "runs": "trigger_service.tracking",
    "run_states": "trigger_service.tracking",
    "seen_objects": "trigger_service.reconcile",
    "reconcile_state": "trigger_service.reconcile",
    "store_probes": "trigger_service.store_health",
    "trigger_pauses": "trigger_service.pauses",
    "outbox": "trigger_service.outbox",  # tracking reports through outbox.store
}


def make_engine(url: str, timeout: float = 30.0) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and its folder created.

    `timeout` (seconds) bounds waiting for SQLite's lock, a PostgreSQL connection and a pooled
    connection, so a locked or unreachable store fails a request instead of hanging it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args = {"connect_timeout": max(1, round(timeout))}
        if parsed.get_driver_name() != "psycopg":
            connect_args = {}
        pg_engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            pool_timeout=timeout,
            connect_args=connect_args,
        )
        event.listen(pg_engine, "connect", _durable_commits)
        return pg_engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A pool as large as the request thread pool: an overflow connection is closed after use,
    # and opening one (with its pragmas) costs more than the insert it serves.
    engine = create_engine(
        url,
        connect_args={"timeout": timeout, "check_same_thread": False},
        pool_size=48,
        max_overflow=16,
        pool_timeout=timeout,
    )
    _WRITE_LOCKS[engine] = threading.Lock()
    if parsed.database and parsed.database != ":memory:":
        _FAST_PATHS[engine] = _FastPath(_WRITE_LOCKS[engine], parsed.database)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # WAL: readers never block the writer; synchronous=FULL: a commit survives power loss.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cur.close()

    return engine


def _durable_commits(dbapi_conn: Any, _record: Any) -> None:
    """A server (or role, or database) set to `synchronous_commit = off` acknowledges a commit
    before its WAL is flushed: a crash then loses events the senders had a 2xx for. This
    session asks for the flush; stronger settings (remote_write, remote_apply) are kept."""
    cur = dbapi_conn.cursor()
    cur.execute("SHOW synchronous_commit")
    row = cur.fetchone()
    if row is not None and row[0] == "off":
        cur.execute("SET synchronous_commit TO on")
    cur.close()
    if not dbapi_conn.autocommit:
        dbapi_conn.commit()  # SHOW/SET opened a transaction; SET (not LOCAL) outlives it


# SQLite has one writer at a time. Writers of this process queue on a lock (woken at once)
# instead of SQLite's busy handler, which sleeps up to 100 ms between tries and made the tail.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction: `engine.begin()`, one writer at a time per process on SQLite."""
    lock = _WRITE_LOCKS.get(engine)
    with lock or nullcontext(), engine.begin() as conn:
        yield conn


@dataclass
class _FastPath:
    """The event loop's own SQLite connection: no pool, no wrapper, never waits for a lock."""

    lock: threading.Lock
    path: str
    connection: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        if self.connection is None:
            # Autocommit mode: BEGIN and COMMIT are issued by hand. busy_timeout=0: another
            # process holding the database fails the BEGIN at once instead of blocking the loop.
            self.connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=FULL")
            self.connection.execute("PRAGMA busy_timeout=0")
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            with suppress(sqlite3.Error):
                self.connection.close()
            self.connection = None


_FAST_PATHS: weakref.WeakKeyDictionary[Engine, _FastPath] = weakref.WeakKeyDictionary()


@contextmanager
def write_now(engine: Engine) -> Iterator[sqlite3.Connection | None]:
    """A SQLite write transaction only if it can start without waiting, else None.

    For the event loop's fast path: it must never sleep on a lock. The in-process lock is tried
    without blocking, and the transaction takes SQLite's write lock at BEGIN with no busy wait,
    so another process holding the database raises sqlite3.OperationalError at once.
    """
    fast = _FAST_PATHS.get(engine)
    if fast is None or not fast.lock.acquire(blocking=False):
        yield None
        return
    try:
        connection = fast.connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full, I/O error) may leave the transaction open and the
            # write lock held: roll back, or drop the connection if even that fails.
            if connection.in_transaction:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    fast.close()
            raise
    finally:
        fast.lock.release()


# Any fixed number: the advisory lock that serializes schema creation across processes.
SCHEMA_LOCK_KEY = 7_410_218_001


def create_schema(engine: Engine) -> None:
    """Create missing tables; replicas starting at once on PostgreSQL take turns (advisory lock),
    else both see no table, both CREATE, and the second fails on pg_type's unique index."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        elif conn.dialect.name == "sqlite":
            # The same on SQLite (processes sharing one file): take the write lock first.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        metadata.create_all(conn)
        _add_new_columns(conn)
        # create_all adds indexes only with a new table: a store made before this one gets it here.
        EVENTS_BY_TIME.create(conn, checkfirst=True)


def _add_new_columns(conn: Connection) -> None:
    """Add nullable columns a newer release declares to the tables an older one created."""
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspect(conn).get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable or column.primary_key:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            try:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            except DBAPIError:
                # Two SQLite processes starting at once: the other one added it first.
                if column.name not in {c["name"] for c in inspect(conn).get_columns(table.name)}:
                    raise
