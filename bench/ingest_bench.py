"""Ingest benchmark: signed GitHub pushes into the real service vs a bare FastAPI endpoint.

    .venv/bin/python bench/ingest_bench.py --part throughput   # wrk, ~2 min
    .venv/bin/python bench/ingest_bench.py --part latency      # open loop 200 req/s, ~2 min
    .venv/bin/python bench/ingest_bench.py --part rss          # idle RSS, no TensorFlow
    .venv/bin/python bench/ingest_bench.py --part all

Both servers run as subprocesses under uvicorn the same way (`python -m trigger_service serve`,
one process; bench/bare_app.py). The service stores in SQLite (WAL, synchronous=FULL) under a
temporary folder; "worker off" is TRIGGER_WORKER_ENABLED=false (pure ingest), "worker on" also
decides every stored push in the same process (a docs-only push: a no-run decision).

throughput: `wrk -t1 -cC -dD` with a Lua script sending one signed body with a unique
X-GitHub-Delivery per request (with the replay window off, each request is a new event);
counts 202s, then counts the rows stored (every 202 must be stored).
latency: a Python open-loop generator (bench/_common.py) at a fixed rate; latency from each
request's scheduled send time to its answer. rss: VmRSS of the service at idle after start,
and whether TensorFlow is loaded (/proc/PID/maps, and sys.modules of the same app built here).
Each figure: median of --repeats runs, load average printed with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _common import (
    REPO_ROOT,
    Request,
    cpu_seconds,
    free_port,
    loadavg,
    machine,
    make_repo,
    maps_mention,
    median,
    open_loop,
    pct,
    rss_mb,
    rules_text,
    service_env,
    start_bare,
    start_service,
    table,
)

from tests.support.github import DOCS_PUSH, signature

SECRET = "bench-secret"
BODY = json.dumps(DOCS_PUSH).encode()
SIGNATURE = signature(BODY, SECRET)

LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1] or "bench"
  n = 0
  accepted = 0
  other = 0
  hdrs = {}
  hdrs["Content-Type"] = "application/json"
  hdrs["X-GitHub-Event"] = "push"
  hdrs["X-Hub-Signature-256"] = "SIGNATURE"
end
function request()
  n = n + 1
  hdrs["X-GitHub-Delivery"] = prefix .. "-" .. tid .. "-" .. n
  return wrk.format("POST", "/webhooks/github", hdrs, [==[BODY]==])
end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    o = o + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("WRKRESULT %d %d %d %d %.0f %.0f %d\n", a, o, summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Server:
    kind: str  # "service (worker off)", "service (worker on)", "bare FastAPI"
    port: int
    pid: int
    db: Path | None
    stop: object


@contextmanager
def server(kind: str, tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    if kind == "bare":
        port = free_port()
        process = start_bare(port, run_dir / "bare.log")
        try:
            yield Server("bare FastAPI", port, process.pid, None, process)
        finally:
            process.terminate()
            process.wait(10)
        return
    (run_dir / "rules.yaml").write_text(rules_text((tmp / "repo").as_uri()))
    env = service_env(
        run_dir,
        TRIGGER_GITHUB_SECRET=SECRET,
        TRIGGER_WORKER_ENABLED="true" if kind == "worker-on" else "false",
    )
    env.update(extra_env or {})
    service = start_service(env, run_dir / "service.log")
    label = "service, worker on" if kind == "worker-on" else "service, worker off"
    try:
        yield Server(label, service.port, service.pid, run_dir / "trigger.db", service)
    finally:
        service.stop()


def env_options(args: argparse.Namespace) -> dict[str, str]:
    return dict(item.split("=", 1) for item in args.env)


def stored(db: Path, prefix: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM events WHERE delivery_id LIKE ?", (f"{prefix}-%",)
            ).fetchone()[0]
        )


def run_wrk(srv: Server, script: Path, conns: int, duration: int) -> dict[str, float]:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    load_before = loadavg()
    cmd = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{duration}s",
        "-s",
        str(script),
        f"http://127.0.0.1:{srv.port}",
        "--",
        prefix,
    ]
    cpu_before = cpu_seconds(srv.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu_used = cpu_seconds(srv.pid) - cpu_before
    match = re.search(r"WRKRESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if match is None:
        raise RuntimeError(f"no result from wrk:\n{out}")
    accepted, other, _requests, duration_us, p50, p99, errors = map(int, match.groups())
    result = {
        "accepted": accepted,
        "other": other,
        "errors": errors,
        "rps": accepted / (duration_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "load": load_before,
        "cpu_ms_per_202": cpu_used / max(1, accepted) * 1000,
        "cpu_pct": cpu_used / (duration_us / 1e6) * 100,
    }
    if srv.db is not None:
        time.sleep(0.5)  # requests in flight when wrk stopped are still being stored
        result["stored"] = stored(srv.db, prefix)
    return result


def part_throughput(args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    script = tmp / "push.lua"
    script.write_text(LUA.replace("SIGNATURE", SIGNATURE).replace("BODY", BODY.decode()))
    kinds = [k for k in ["worker-off", "bare", "worker-on"] if k in args.servers]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for rep in range(args.repeats):
        for kind in kinds:
            with server(kind, tmp, env_options(args)) as srv:
                time.sleep(1.0)
                r = run_wrk(srv, script, args.connections, args.duration)
                results[kind].append(r)
                print(f"  [{rep + 1}/{args.repeats}] {srv.kind}: {json.dumps(r)}", flush=True)
    bare_rps = median([r["rps"] for r in results["bare"]]) if "bare" in kinds else float("nan")
    rows = []
    for kind in kinds:
        rs = results[kind]
        rps = median([r["rps"] for r in rs])
        stored_ok = "n/a"
        if kind != "bare":
            short = [r for r in rs if r["stored"] < r["accepted"]]
            stored_ok = "all stored" if not short else f"{len(short)} run(s) lost events: {short}"
            stored_ok += f" ({sum(int(r['stored']) for r in rs)} rows >= "
            stored_ok += f"{sum(int(r['accepted']) for r in rs)} 202s)"
        rows.append(
            [
                {"worker-off": "service, worker off", "worker-on": "service, worker on"}.get(
                    kind, "bare FastAPI"
                ),
                f"{rps:.0f}",
                f"{rps / bare_rps:.0%}",
                f"{median([r['p50_ms'] for r in rs]):.1f}",
                f"{median([r['p99_ms'] for r in rs]):.1f}",
                f"{median([r['cpu_ms_per_202'] for r in rs]):.2f}",
                f"{median([r['cpu_pct'] for r in rs]):.0f}",
                str(sum(int(r["other"]) + int(r["errors"]) for r in rs)),
                stored_ok,
                "; ".join(str(r["load"]) for r in rs),
            ]
        )
    print(
        f"\nthroughput: wrk -t1 -c{args.connections} -d{args.duration}s, median of {args.repeats}"
    )
    header = [
        "server",
        "202/s",
        "vs bare",
        "p50 ms",
        "p99 ms",
        "server CPU ms/202",
        "server CPU %",
        "non-202",
        "stored",
        "load",
    ]
    print(table(rows, header))
    return rows


def part_latency(args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    kinds = [k for k in ["worker-off", "worker-on", "bare"] if k in args.servers]
    results: dict[str, list[tuple[float, float, float, int, int, str]]] = {k: [] for k in kinds}

    for rep in range(args.repeats):
        for kind in kinds:
            with server(kind, tmp, env_options(args)) as srv:
                time.sleep(1.0)
                prefix = f"o{uuid.uuid4().hex[:8]}"

                def make(i: int, prefix: str = prefix) -> Request:
                    headers = {
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "push",
                        "X-GitHub-Delivery": f"{prefix}-{i}",
                        "X-Hub-Signature-256": SIGNATURE,
                    }
                    return ("POST", "/webhooks/github", headers, BODY)

                if args.warmup > 0:  # discarded: a fresh process's first second is not steady
                    asyncio.run(open_loop(srv.port, lambda i: make(-1 - i), args.rate, args.warmup))
                load = loadavg()
                res = asyncio.run(open_loop(srv.port, make, args.rate, args.latency_duration))
                lat = [x * 1000 for x in res.latencies]
                n_stored = stored(srv.db, prefix) if srv.db is not None else -1
                row = (pct(lat, 50), pct(lat, 99), max(lat), res.ok, n_stored, load)
                results[kind].append(row)
                print(
                    f"  [{rep + 1}/{args.repeats}] {srv.kind}: p50 {row[0]:.1f} ms p99 "
                    f"{row[1]:.1f} ms max {row[2]:.1f} ms, {res.ok} 2xx, statuses "
                    f"{res.statuses}, errors {res.errors}, late sends {res.late_starts}, "
                    f"stored {n_stored}, load {load}",
                    flush=True,
                )
    rows = []
    for kind in kinds:
        rs = results[kind]
        rows.append(
            [
                {"worker-off": "service, worker off", "worker-on": "service, worker on"}.get(
                    kind, "bare FastAPI"
                ),
                f"{median([r[0] for r in rs]):.1f}",
                f"{median([r[1] for r in rs]):.1f}",
                f"{median([r[2] for r in rs]):.1f}",
                "; ".join(str(r[5]) for r in rs),
            ]
        )
    print(
        f"\nlatency: open loop {args.rate:.0f} req/s for {args.latency_duration:.0f} s after "
        f"{args.warmup:.0f} s of warm-up, median of {args.repeats} runs"
    )
    print(table(rows, ["server", "p50 ms", "p99 ms", "max ms", "load"]))
    return rows


IMPORT_CHECK = """
import sys, resource
from trigger_service.settings import Settings
from trigger_service.service import Services
from trigger_service.api import create_app
services = Services.build(Settings())
app = create_app(services)
heavy = ["tensorflow", "keras", "onnxruntime", "kfp", "pandas", "numpy", "sklearn", "torch"]
print("IMPORTED", ",".join(m for m in heavy if m in sys.modules) or "-")
print("MODULES", len(sys.modules))
"""


def part_rss(args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    rows = []
    for backend in ("local", "shadow"):
        samples = []
        for _ in range(args.repeats):
            run_dir = Path(tempfile.mkdtemp(dir=tmp))
            (run_dir / "rules.yaml").write_text(rules_text((tmp / "repo").as_uri()))
            env = service_env(run_dir, TRIGGER_GITHUB_SECRET=SECRET, TRIGGER_BACKEND=backend)
            service = start_service(env, run_dir / "service.log")
            try:
                time.sleep(args.idle_seconds)
                samples.append(
                    (
                        rss_mb(service.pid),
                        maps_mention(service.pid, "tensorflow"),
                        maps_mention(service.pid, "onnxruntime"),
                        loadavg(),
                    )
                )
            finally:
                service.stop()
            check = subprocess.run(
                [sys.executable, "-c", IMPORT_CHECK],
                env={
                    **os.environ,
                    **env,
                    "PYTHONPATH": str(REPO_ROOT),
                },
                capture_output=True,
                text=True,
                cwd=run_dir,
            )
        imported = re.search(r"IMPORTED (\S+)", check.stdout)
        rows.append(
            [
                f"service idle, backend={backend}",
                f"{median([s[0] for s in samples]):.1f}",
                "yes" if any(s[1] for s in samples) else "no",
                imported.group(1) if imported else f"check failed: {check.stderr[-300:]}",
                "; ".join(s[3] for s in samples),
            ]
        )
    bare = []
    for _ in range(args.repeats):
        port = free_port()
        process = start_bare(port, tmp / "bare.log")
        try:
            time.sleep(args.idle_seconds)
            bare.append(rss_mb(process.pid))
        finally:
            process.terminate()
            process.wait(10)
    rows.append(["bare FastAPI idle", f"{median(bare):.1f}", "no", "-", loadavg()])
    print(f"\nidle RSS after {args.idle_seconds:.0f} s, median of {args.repeats} starts")
    print(table(rows, ["process", "VmRSS MB", "libtensorflow mapped", "heavy modules", "load"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["throughput", "latency", "rss", "all"], default="all")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per run")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    parser.add_argument("--latency-duration", type=float, default=10.0)
    parser.add_argument(
        "--servers",
        default="worker-off,worker-on,bare",
        help="throughput/latency: which of worker-off, worker-on, bare",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="extra TRIGGER_X=VALUE for the service"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="latency: seconds discarded")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None and args.part in ("throughput", "all"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    print(f"{machine()}; start {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"load average at start: {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as name:
        tmp = Path(name)
        make_repo(tmp / "repo")
        if args.part in ("rss", "all"):
            part_rss(args, tmp)
        if args.part in ("throughput", "all"):
            part_throughput(args, tmp)
        if args.part in ("latency", "all"):
            part_latency(args, tmp)
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
