"""Decision benchmark: stored event -> decision latency, drain rate, storm settle time.

    .venv/bin/python bench/decision_bench.py --part drain     # 10,000 queued events, in-process
    .venv/bin/python bench/decision_bench.py --part latency   # worker thread, steady stores
    .venv/bin/python bench/decision_bench.py --part storm     # 2,000 MinIO events over HTTP
    .venv/bin/python bench/decision_bench.py --part all

drain: Services built in-process (SQLite WAL synchronous=FULL in a temporary folder, shadow
backend, a real git repository for the version lookup), N events stored first, then the worker
ticked (as run_until_idle does) until idle or --cap seconds. Reported: time until every event
is decided, events/s inside Worker.decide alone, and runs submitted/s. Scenarios: data events
without debounce under `parallel` concurrency (every event its own run decision, each submitted
to the shadow backend), the same with a 30 s debounce (one prefix: every event joins one
collecting decision), and docs-only pushes (no-run decisions).
latency: the worker thread running (services.worker.start()); events stored one at a time at
a steady rate, each followed by the wake-up the HTTP route sends; events.decided_at -
events.received_at read from the database (both epoch seconds).
storm: the real service (`python -m trigger_service serve`, worker on, shadow backend) with a
data trigger debounced --debounce seconds; --storm-events MinIO notifications for one prefix
sent concurrently; time from the last 202 (and from the first request) until the single run
is recorded (runs.created_at), and checks there is exactly one run decision covering them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from math import inf
from pathlib import Path
from typing import Any

from _common import (
    Request,
    loadavg,
    machine,
    make_repo,
    median,
    pct,
    rules_text,
    service_env,
    start_service,
    table,
)

from demo.payloads import storage_event
from trigger_service.database import write
from trigger_service.events import CodeSubject, DataSubject, Event, EventKind, make_event_id
from trigger_service.service import Services
from trigger_service.settings import Settings

STORAGE_TOKEN = "bench-storage-token"


def build(tmp: Path, repo_url: str, debounce: float) -> Services:
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    rules = run_dir / "rules.yaml"
    rules.write_text(rules_text(repo_url, "parallel", debounce))
    settings = Settings(
        database_url=f"sqlite:///{run_dir / 'trigger.db'}",
        rules_path=rules,
        backend="shadow",
        git_cache_dir=run_dir / "git-cache",
        models_root=run_dir / "models",
        runs_dir=run_dir / "runs",
        log_level="WARNING",
    )
    return Services.build(settings)


def data_event(i: int, tag: str) -> Event:
    subject = DataSubject(
        bucket="datasets",
        key=f"songs/part-{tag}-{i}.csv",
        event_name="s3:ObjectCreated:Put",
        size=100,
        sequencer=f"{tag}{i:012X}",
    )
    return Event(
        id=make_event_id("storage", subject.bucket, subject.key, subject.sequencer or ""),
        kind=EventKind.DATA,
        source="storage",
        subject=subject,
        received_at=datetime.now(UTC),
    )


def docs_push(i: int, tag: str) -> Event:
    subject = CodeSubject(
        repository="https://example.com/team/songs.git",
        repository_name="team/songs",
        ref="refs/heads/main",
        branch="main",
        tag=None,
        before="1" * 40,
        after="2" * 40,
        deleted=False,
        created=False,
        changed_paths=("docs/x.md",),
        pusher="ana",
    )
    return Event(
        id=make_event_id("github", f"{tag}-{i}"),
        kind=EventKind.CODE,
        source="github",
        subject=subject,
        received_at=datetime.now(UTC),
        delivery_id=f"{tag}-{i}",
    )


class Timed:
    """Wraps a bound method, adding up the seconds spent in it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seconds = 0.0

    def __call__(self, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - started


def db_path(services: Services) -> str:
    return str(services.engine.url.database)


@dataclass
class Drain:
    decided_at: float  # seconds from the start until every event was decided
    decide_seconds: float  # inside Worker.decide
    total: float  # until idle, or the cap
    submitted: int  # runs submitted by then
    idle: bool  # drained completely (False: stopped at the cap)
    check: str
    load: str


def one_drain(tmp: Path, repo_url: str, n: int, scenario: str, cap: float) -> Drain:
    debounce = 30.0 if scenario == "data, debounce 30 s" else 0.0
    services = build(tmp, repo_url, debounce)
    make = docs_push if scenario.startswith("docs") else data_event
    if make is docs_push:
        # Git decides a push: the repository's first commit is built, its head only touches
        # README.md, so every push decides "no path matched" from git's own diff.
        built = subprocess.run(
            ["git", "-C", str(tmp / "repo"), "rev-list", "--max-parents=0", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with write(services.engine) as conn:
            services.versions.set_current(conn, "songs", "main", built, "bench", "bench")
    tag = f"{time.time_ns():X}"
    events = [make(i, tag) for i in range(n)]
    for start in range(0, n, 500):
        services.inbox.store(events[start : start + 500])
    decide = Timed(services.worker.decide)
    services.worker.decide = decide  # type: ignore[method-assign]
    load = loadavg()
    decided = submitted = 0
    decided_at = float("nan")
    idle = False
    started = time.perf_counter()
    while time.perf_counter() - started < cap:
        tick = services.worker.tick()
        decided += tick.decided
        submitted += tick.submitted
        if decided >= n and decided_at != decided_at:
            decided_at = time.perf_counter() - started
        if not tick.busy:
            idle = True
            break
    total = time.perf_counter() - started
    with sqlite3.connect(db_path(services)) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM events GROUP BY status"))
        outcome = dict(
            conn.execute("SELECT outcome || '/' || state, count(*) FROM decisions GROUP BY 1")
        )
    services.engine.dispose()
    check = f"events {statuses}; decisions {outcome}"
    return Drain(decided_at, decide.seconds, total, submitted, idle, check, load)


def part_drain(args: argparse.Namespace, tmp: Path, repo_url: str) -> None:
    scenarios = ["data, no debounce", "data, debounce 30 s", "docs push (no run)"]
    rows = []
    for scenario in scenarios:
        runs = []
        for rep in range(args.repeats):
            r = one_drain(tmp, repo_url, args.events, scenario, args.cap)
            runs.append(r)
            print(
                f"  [{rep + 1}/{args.repeats}] {scenario}: all decided after "
                f"{r.decided_at:.2f} s (in decide {r.decide_seconds:.2f} s); "
                f"{'idle' if r.idle else 'stopped at the cap'} after {r.total:.2f} s with "
                f"{r.submitted} runs submitted; {r.check}; load {r.load}",
                flush=True,
            )
        # A run stopped at the cap before deciding everything counts as "more than the cap".
        decided_at = median([r.decided_at if r.decided_at == r.decided_at else inf for r in runs])
        rows.append(
            [
                scenario,
                f"{decided_at:.2f}" if decided_at < inf else f"> {args.cap:.0f} (cap)",
                f"{args.events / decided_at:.0f}"
                if decided_at < inf
                else f"< {args.events / args.cap:.0f}",
                f"{args.events / median([r.decide_seconds for r in runs]):.0f}",
                f"{median([r.submitted / r.total for r in runs]):.1f}",
                "; ".join(r.load for r in runs),
            ]
        )
    print(
        f"\ndrain: {args.events} stored events, worker.tick() until idle (cap {args.cap:.0f} s),"
        f" median of {args.repeats}"
    )
    header = [
        "scenario",
        "s to decide all",
        "events decided/s",
        "events/s inside decide()",
        "runs submitted/s",
        "load",
    ]
    print(table(rows, header))


def part_latency(args: argparse.Namespace, tmp: Path, repo_url: str) -> None:
    kinds: dict[str, Callable[[int, str], Event]] = {
        "data, no debounce (each a run)": data_event,
        "docs push (no run)": docs_push,
    }
    table_rows = []
    for label, make in kinds.items():
        rows = []
        for rep in range(args.repeats):
            services = build(tmp, repo_url, 0.0)
            services.worker.start()
            tag = f"{time.time_ns():X}"
            load = loadavg()
            n = int(args.rate * args.latency_duration)
            start = time.monotonic()
            for i in range(n):
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                services.inbox.store([make(i, tag)])
                services.worker_wakeup()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and services.inbox.depth()["decided"] < n:
                time.sleep(0.1)
            services.worker.stop()
            with sqlite3.connect(db_path(services)) as conn:
                lat = [
                    (decided - received) * 1000
                    for received, decided in conn.execute(
                        "SELECT received_at, decided_at FROM events WHERE decided_at IS NOT NULL"
                    )
                ]
            services.engine.dispose()
            row = (pct(lat, 50), pct(lat, 99), max(lat), len(lat), load)
            rows.append(row)
            print(
                f"  [{rep + 1}/{args.repeats}] {label}: {len(lat)}/{n} decided: p50 "
                f"{row[0]:.1f} ms, p99 {row[1]:.1f} ms, max {row[2]:.1f} ms; load {load}",
                flush=True,
            )
        table_rows.append(
            [
                label,
                f"{median([r[0] for r in rows]):.1f}",
                f"{median([r[1] for r in rows]):.1f}",
                f"{median([r[2] for r in rows]):.1f}",
                "; ".join(r[4] for r in rows),
            ]
        )
    print(
        f"\nstored -> decided, {args.rate:.0f} events/s for {args.latency_duration:.0f} s, "
        f"worker thread, median of {args.repeats}"
    )
    print(table(table_rows, ["events", "p50 ms", "p99 ms", "max ms", "load"]))


def part_storm(args: argparse.Namespace, tmp: Path, repo_url: str) -> None:
    from _common import closed_loop

    rows = []
    for rep in range(args.repeats):
        run_dir = Path(tempfile.mkdtemp(dir=tmp))
        (run_dir / "rules.yaml").write_text(
            rules_text(repo_url, "parallel", args.debounce, max_wait=300)
        )
        env = service_env(run_dir, TRIGGER_STORAGE_TOKEN=STORAGE_TOKEN)
        service = start_service(env, run_dir / "service.log")
        tag = f"{time.time_ns():X}"
        headers = {"Authorization": f"Bearer {STORAGE_TOKEN}", "Content-Type": "application/json"}

        def make(i: int, tag: str = tag, headers: dict[str, str] = headers) -> Request:
            body = json.dumps(storage_event("datasets", f"songs/storm-{tag}-{i}.csv", 100)).encode()
            return ("POST", "/webhooks/storage", headers, body)

        try:
            time.sleep(1.0)
            load = loadavg()
            res = asyncio.run(closed_loop(service.port, make, args.storm_events, args.concurrency))
            db = run_dir / "trigger.db"
            deadline = time.monotonic() + args.debounce + 60
            created = None
            while time.monotonic() < deadline:
                with sqlite3.connect(db) as conn:
                    row = conn.execute("SELECT min(created_at) FROM runs").fetchone()
                if row[0] is not None:
                    created = float(row[0])
                    break
                time.sleep(0.05)
            time.sleep(1.0)
            with sqlite3.connect(db) as conn:
                runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
                run_decisions = conn.execute(
                    "SELECT count(*), max(event_count) FROM decisions WHERE outcome = 'run'"
                ).fetchone()
                decided = conn.execute(
                    "SELECT count(*) FROM events WHERE status = 'decided'"
                ).fetchone()[0]
        finally:
            service.stop()
        if created is None:
            raise RuntimeError(f"no run recorded; log:\n{(run_dir / 'service.log').read_text()}")
        row = (
            created - res.last_answer,
            created - res.first_sent,
            res.elapsed,
            res.ok,
            runs,
            run_decisions,
            decided,
            load,
        )
        rows.append(row)
        print(
            f"  [{rep + 1}/{args.repeats}] {res.ok} x 202 in {res.elapsed:.2f} s "
            f"({res.ok / res.elapsed:.0f}/s, statuses {res.statuses}, errors {res.errors}); "
            f"run recorded {row[0]:.2f} s after the last 202, {row[1]:.2f} s after the first "
            f"request; runs {runs}, run decisions (count, events) {tuple(run_decisions)}, "
            f"events decided {decided}; load {load}",
            flush=True,
        )
    print(
        f"\nstorm: {args.storm_events} MinIO events, one prefix, debounce {args.debounce:.0f} s, "
        f"{args.concurrency} concurrent connections, median of {args.repeats}"
    )
    print(
        table(
            [
                [
                    f"{median([r[2] for r in rows]):.2f}",
                    f"{median([r[0] for r in rows]):.2f}",
                    f"{median([r[1] for r in rows]):.2f}",
                    ", ".join(str(r[4]) for r in rows),
                    ", ".join(str(r[6]) for r in rows),
                    "; ".join(r[7] for r in rows),
                ]
            ],
            [
                "sending s",
                "settle s (last 202 -> run)",
                "first request -> run s",
                "runs",
                "events decided",
                "load",
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["drain", "latency", "storm", "all"], default="all")
    parser.add_argument("--events", type=int, default=10_000, help="drain: events queued")
    parser.add_argument("--cap", type=float, default=30.0, help="drain: seconds per scenario")
    parser.add_argument("--rate", type=float, default=20.0, help="latency: events/s")
    parser.add_argument("--latency-duration", type=float, default=10.0)
    parser.add_argument("--storm-events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16, help="storm: connections")
    parser.add_argument("--debounce", type=float, default=2.0, help="storm: debounce seconds")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{machine()}; start {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"load average at start: {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="decision-bench-") as name:
        tmp = Path(name)
        repo_url = make_repo(tmp / "repo")
        (tmp / "repo" / "README.md").write_text("docs\n")
        for step in (["add", "README.md"], ["commit", "-q", "-m", "docs only"]):
            subprocess.run(["git", "-C", str(tmp / "repo"), *step], check=True)
        if args.part in ("drain", "all"):
            part_drain(args, tmp, repo_url)
        if args.part in ("latency", "all"):
            part_latency(args, tmp, repo_url)
        if args.part in ("storm", "all"):
            part_storm(args, tmp, repo_url)
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
