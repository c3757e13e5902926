"""What one durable store costs: Inbox.store vs raw sqlite3, wall and CPU, and where the CPU goes.

    .venv/bin/python bench/store_cost_bench.py [--stores 1000] [--repeats 3]

Single thread, no contention: Inbox.store([event]) (SQLAlchemy Core, SQLite WAL,
synchronous=FULL, one transaction per call as the webhook route does) against a raw sqlite3
INSERT + COMMIT with the same pragmas, and against Inbox.store on synchronous=NORMAL (to show the
fsync share). Then a cProfile of Inbox.store: the share of its time spent compiling the INSERT.
The sqlite/postgresql dialect `insert().on_conflict_do_nothing()` construct has no cache key in
SQLAlchemy 2.0 (inherit_cache = False; sqlalchemy/sqlalchemy#10445), so it is compiled again on
every call; the same construct is used for decision_events and decisions in the worker.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import loadavg, machine, median, table
from sqlalchemy import event as sa_event

from trigger_service.database import create_schema, make_engine
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.inbox import Inbox


def manual(i: int, tag: str) -> Event:
    return Event(
        f"manual-{tag}-{i}", EventKind.MANUAL, "manual", ManualSubject("songs"), datetime.now(UTC)
    )


def inbox(tmp: Path, synchronous: str) -> Inbox:
    engine = make_engine(f"sqlite:///{tmp / f'{synchronous}-{time.time_ns()}.db'}")
    if synchronous != "FULL":

        @sa_event.listens_for(engine, "connect")
        def _pragma(dbapi_conn: object, _record: object) -> None:
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")  # type: ignore[attr-defined]

    create_schema(engine)
    return Inbox(engine)


def time_inbox(box: Inbox, n: int) -> tuple[float, float]:
    tag = f"{time.time_ns():X}"
    for i in range(20):
        box.store([manual(-i - 1, tag)])
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        box.store([manual(i, tag)])
    return (time.perf_counter() - wall) / n * 1000, (time.process_time() - cpu) / n * 1000


def time_raw(tmp: Path, n: int) -> tuple[float, float]:
    conn = sqlite3.connect(tmp / f"raw-{time.time_ns()}.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, subject TEXT, received_at REAL)")
    conn.commit()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        conn.execute(
            "INSERT INTO t VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (f"k{i}", '{"pipeline": "songs"}', time.time()),
        )
        conn.commit()
    conn.close()
    return (time.perf_counter() - wall) / n * 1000, (time.process_time() - cpu) / n * 1000


def compile_share(tmp: Path, n: int) -> tuple[float, float]:
    box = inbox(tmp, "FULL")
    tag = f"{time.time_ns():X}"
    profile = cProfile.Profile()
    profile.enable()
    for i in range(n):
        box.store([manual(i, tag)])
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = compiled = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in stats.items():
        if filename.endswith("inbox/store.py") and name == "store":
            total = cumulative
        if filename.endswith("sql/elements.py") and name == "_compile_w_cache":
            compiled = cumulative
    return compiled / n * 1000, total / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{machine()}; start {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    results: dict[str, list[tuple[float, float, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="store-cost-") as name:
        tmp = Path(name)
        n = args.stores
        for _ in range(args.repeats):
            for label, run in (
                ("Inbox.store, synchronous=FULL", lambda: time_inbox(inbox(tmp, "FULL"), n)),
                ("Inbox.store, synchronous=NORMAL", lambda: time_inbox(inbox(tmp, "NORMAL"), n)),
                ("raw sqlite3 INSERT+COMMIT, FULL", lambda: time_raw(tmp, n)),
            ):
                load = loadavg()
                wall, cpu = run()
                results.setdefault(label, []).append((wall, cpu, load))
        shares = [compile_share(tmp, args.stores // 2) for _ in range(args.repeats)]
    rows = [
        [
            label,
            f"{median([r[0] for r in rs]):.2f}",
            f"{median([r[1] for r in rs]):.2f}",
            "; ".join(r[2] for r in rs),
        ]
        for label, rs in results.items()
    ]
    print(f"\none event per transaction, {args.stores} stores, median of {args.repeats}")
    print(table(rows, ["store", "wall ms/store", "CPU ms/store", "load"]))
    compiled = median([s[0] for s in shares])
    total = median([s[1] for s in shares])
    print(
        f"\ncProfile of Inbox.store ({args.stores // 2} calls, median of {args.repeats}): "
        f"{total:.2f} ms per call, of which compiling the INSERT {compiled:.2f} ms "
        f"({compiled / total:.0%}); load {loadavg()}"
    )


if __name__ == "__main__":
    main()
