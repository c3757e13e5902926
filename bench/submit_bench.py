"""Submission benchmark: stored event -> KFP run created; the service's own cost during a run.

    .venv/bin/python bench/submit_bench.py --part kfp     # against tests/support/kfp_double
    .venv/bin/python bench/submit_bench.py --part local   # the demo loop, sampling the service
    .venv/bin/python bench/submit_bench.py --part all

kfp: the KFP REST double (tests/support/kfp_double.KfpDouble) on loopback; Services built
in-process (SQLite WAL synchronous=FULL, backend kfp with KfpBackend.from_settings) with the
worker thread running; the rules' pipeline is a compiled one-step pipeline in a git repository
made here, concurrency `parallel`. Manual events are stored at a steady rate, each followed by
the worker wake-up the HTTP route sends. The double's request handler is wrapped to note when
it answered each POST /apis/v2beta1/runs; latency = that time - events.received_at. The first
run also uploads the pipeline and its version and creates the experiment: reported apart.

local: `python -m demo loop --var <tmp>` (its own S3 server, the service with
TRIGGER_BACKEND=local, a manual trigger, a MinIO event and a drift alert, runs trained one at a
time by a child process). The SERVICE process is sampled every second: VmRSS, and CPU% from
utime+stime deltas in /proc/PID/stat (its own threads only, not its children), next to the CPU%
of its descendants (the training). Stops when the demo ends or after --max-seconds.
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    REPO_ROOT,
    cpu_seconds,
    loadavg,
    machine,
    make_repo,
    median,
    pct,
    rss_mb,
    rules_text,
    table,
)

from tests.support.kfp_double import KfpDouble, RecordedRequest
from tests.support.tiny_pipeline import compile_tiny
from trigger_service.events import Event, EventKind, ManualSubject, make_event_id
from trigger_service.service import Services
from trigger_service.settings import Settings
from trigger_service.submit.kfp_remote import KfpBackend


def one_kfp(args: argparse.Namespace, tmp: Path, repo_url: str) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    (run_dir / "rules.yaml").write_text(rules_text(repo_url, "parallel", 0))
    token = run_dir / "token"
    token.write_text("sa-token")
    created: dict[str, float] = {}
    with KfpDouble() as kfp:
        handle = kfp.handle

        def timed(request: RecordedRequest) -> tuple[int, dict[str, Any]]:
            status, body = handle(request)
            if request.method == "POST" and request.path.endswith("/runs") and status == 200:
                created[body["display_name"]] = time.time()
            return status, body

        kfp.handle = timed  # type: ignore[method-assign]
        settings = Settings(
            database_url=f"sqlite:///{run_dir / 'trigger.db'}",
            rules_path=run_dir / "rules.yaml",
            backend="kfp",
            kfp_host=kfp.url,
            kfp_token_path=token,
            git_cache_dir=run_dir / "git-cache",
            models_root=run_dir / "models",
            log_level="WARNING",
        )
        services = Services.build(settings, backend=KfpBackend.from_settings(settings))
        services.worker.start()
        load = loadavg()
        try:
            start = time.monotonic()
            for i in range(args.runs):
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                event = Event(
                    make_event_id("manual", f"bench-{i}"),
                    EventKind.MANUAL,
                    "manual",
                    ManualSubject("songs", reason="bench"),
                    datetime.now(UTC),
                )
                services.inbox.store([event])
                services.worker_wakeup()
            deadline = time.monotonic() + 60
            while len(created) < args.runs and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            services.worker.stop()
        with sqlite3.connect(run_dir / "trigger.db") as conn:
            pairs = conn.execute(
                "SELECT r.run_name, e.received_at FROM runs r"
                " JOIN decision_events de ON de.decision_id = r.decision_id"
                " JOIN events e ON e.id = de.event_id ORDER BY e.received_at"
            ).fetchall()
        services.engine.dispose()
    latencies = [(created[name] - received) * 1000 for name, received in pairs if name in created]
    status_gets = sum(
        1 for r in kfp.requests if r.method == "GET" and r.path.startswith("/apis/v2beta1/runs/")
    )
    return {
        "status_gets": status_gets,
        "first": latencies[0] if latencies else float("nan"),
        "rest": latencies[1:],
        "created": len(created),
        "double_runs": len(kfp.runs),
        "load": load,
    }


def part_kfp(args: argparse.Namespace, tmp: Path) -> None:
    package = tmp / "compiled.yaml"
    compile_tiny(package)
    repo_url = make_repo(tmp / "repo", package.read_text())
    rows = []
    for rep in range(args.repeats):
        r = one_kfp(args, tmp, repo_url)
        rows.append(r)
        print(
            f"  [{rep + 1}/{args.repeats}] {r['created']}/{args.runs} runs created "
            f"(double holds {r['double_runs']}); first {r['first']:.0f} ms; rest p50 "
            f"{pct(r['rest'], 50):.0f} ms p99 {pct(r['rest'], 99):.0f} ms max "
            f"{max(r['rest'], default=float('nan')):.0f} ms; run-status GETs to the double "
            f"{r['status_gets']}; load {r['load']}",
            flush=True,
        )
    print(
        f"\nstored -> KFP run created (double), {args.runs} manual events at {args.rate:g}/s, "
        f"median of {args.repeats}"
    )
    print(
        table(
            [
                [
                    f"{median([r['first'] for r in rows]):.0f}",
                    f"{median([pct(r['rest'], 50) for r in rows]):.0f}",
                    f"{median([pct(r['rest'], 99) for r in rows]):.0f}",
                    f"{median([r['status_gets'] for r in rows]):.0f}",
                    "; ".join(r["load"] for r in rows),
                ]
            ],
            ["first run ms (uploads)", "p50 ms", "p99 ms", "run-status GETs", "load"],
        )
    )


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def part_local(args: argparse.Namespace, tmp: Path) -> None:
    var = tmp / "demo-var"
    log_path = tmp / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "demo", "loop", "--var", str(var)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = None
    deadline = time.monotonic() + 60
    while service is None and time.monotonic() < deadline and demo.poll() is None:
        service = next(
            (p for p in children(demo.pid) if "trigger_service serve" in cmdline(p)), None
        )
        time.sleep(0.2)
    if service is None:
        demo.kill()
        sys.exit(f"no service process found; demo log:\n{log_path.read_text()[-2000:]}")
    samples: list[tuple[float, float, float, bool, str]] = []  # rss, cpu%, kids cpu%, training
    started = time.monotonic()
    last_t, last_cpu = time.monotonic(), cpu_seconds(service)
    kid_cpu: dict[int, float] = {}
    try:
        while demo.poll() is None and time.monotonic() - started < args.max_seconds:
            time.sleep(1.0)
            try:
                now, cpu, rss = time.monotonic(), cpu_seconds(service), rss_mb(service)
            except OSError:
                break
            kids = descendants(service)
            training = any("pipeline" in cmdline(k) for k in kids)
            kids_delta = 0.0
            for k in kids:
                try:
                    total = cpu_seconds(k)
                except OSError:
                    continue
                kids_delta += total - kid_cpu.get(k, 0.0)
                kid_cpu[k] = total
            dt = now - last_t
            samples.append(
                (rss, (cpu - last_cpu) / dt * 100, kids_delta / dt * 100, training, loadavg())
            )
            last_t, last_cpu = now, cpu
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # the demo stops its service and S3 server
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-12:]
    print("  demo log tail:\n    " + "\n    ".join(tail))
    during = [s for s in samples if s[3]]
    rows = []
    for label, chosen in (("while a run trains", during), ("whole demo", samples)):
        if not chosen:
            rows.append([label, "0", "-", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                label,
                str(len(chosen)),
                f"{sum(s[0] for s in chosen) / len(chosen):.0f}",
                f"{max(s[0] for s in chosen):.0f}",
                f"{sum(s[1] for s in chosen) / len(chosen):.1f}",
                f"{max(s[1] for s in chosen):.0f}",
                f"{sum(s[2] for s in chosen) / len(chosen):.0f}",
            ]
        )
    print(
        f"\nservice process during `python -m demo loop` "
        f"({len(samples)} one-second samples, exit {demo.returncode}); "
        f"load {samples[0][4] if samples else '-'} -> {samples[-1][4] if samples else '-'}"
    )
    header = [
        "window",
        "samples",
        "RSS mean MB",
        "RSS max MB",
        "service CPU% mean",
        "service CPU% max",
        "children CPU% mean",
    ]
    print(table(rows, header))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["kfp", "local", "all"], default="all")
    parser.add_argument("--runs", type=int, default=50, help="kfp: manual events (runs)")
    parser.add_argument("--rate", type=float, default=5.0, help="kfp: events/s")
    parser.add_argument("--repeats", type=int, default=3, help="kfp: repeats")
    parser.add_argument("--max-seconds", type=float, default=110.0, help="local: sampling cap")
    args = parser.parse_args()
    print(f"{machine()}; start {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"load average at start: {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="submit-bench-") as name:
        tmp = Path(name)
        if args.part in ("kfp", "all"):
            part_kfp(args, tmp)
        if args.part in ("local", "all"):
            part_local(args, tmp)
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
