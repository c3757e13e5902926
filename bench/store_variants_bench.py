"""Would a different inbox write path meet the ingest goals? The service vs two prototypes.

    .venv/bin/python bench/store_variants_bench.py [--duration 6] [--repeats 3]

Runs `serve` (worker off, SQLite WAL synchronous=FULL) through bench/_store_variants_serve.py
with Inbox.store as it is ("service"), behind a process-wide lock ("lock"), or with group
commit ("group": one writer thread, one transaction and one fsync for every store waiting).
Each: wrk -t1 -c16 (202/s, p99) and the open-loop generator at 200 req/s (p50/p99), and the
count of stored rows. The prototypes are not part of the service; see docs/benchmarks-service.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import ingest_bench as ib
from _common import (
    Request,
    free_port,
    loadavg,
    machine,
    make_repo,
    median,
    open_loop,
    pct,
    rules_text,
    service_env,
    table,
)

from tests.support.server import ServiceProcess, wait_ready

HERE = Path(__file__).resolve().parent


def start(variant: str, tmp: Path) -> ServiceProcess:
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    (run_dir / "rules.yaml").write_text(rules_text((tmp / "repo").as_uri()))
    env = service_env(run_dir, TRIGGER_GITHUB_SECRET=ib.SECRET, TRIGGER_WORKER_ENABLED="false")
    port = free_port()
    log = (run_dir / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_store_variants_serve.py"), "serve", "--port", str(port)],
        env={**os.environ, **env, "STORE_VARIANT": variant if variant != "service" else ""},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=run_dir,
    )
    service = ServiceProcess(process, port, run_dir / "service.log", log)
    wait_ready(service, 30)
    return service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{machine()}; start {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    variants = ["service", "lock", "group"]
    results: dict[str, list[dict[str, float | str]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="store-variants-") as name:
        tmp = Path(name)
        make_repo(tmp / "repo")
        script = tmp / "push.lua"
        script.write_text(
            ib.LUA.replace("SIGNATURE", ib.SIGNATURE).replace("BODY", ib.BODY.decode())
        )
        for rep in range(args.repeats):
            for variant in variants:
                service = start(variant, tmp)
                try:
                    time.sleep(1.0)
                    db = service.log_path.parent / "trigger.db"
                    srv = ib.Server(variant, service.port, service.pid, db, service)
                    wrk = ib.run_wrk(srv, script, 16, args.duration)
                    prefix = f"o{uuid.uuid4().hex[:8]}"

                    def make(i: int, prefix: str = prefix) -> Request:
                        headers = {
                            "Content-Type": "application/json",
                            "X-GitHub-Event": "push",
                            "X-GitHub-Delivery": f"{prefix}-{i}",
                            "X-Hub-Signature-256": ib.SIGNATURE,
                        }
                        return ("POST", "/webhooks/github", headers, ib.BODY)

                    load = loadavg()
                    res = asyncio.run(open_loop(service.port, make, 200, args.duration))
                    lat = [x * 1000 for x in res.latencies]
                    row: dict[str, float | str] = {
                        "rps": wrk["rps"],
                        "wrk_p99": wrk["p99_ms"],
                        "cpu": wrk["cpu_ms_per_202"],
                        "lost": wrk["accepted"] - wrk["stored"] + res.ok - ib.stored(db, prefix),
                        "p50": pct(lat, 50),
                        "p99": pct(lat, 99),
                        "load": f"{wrk['load']} / {load}",
                    }
                finally:
                    service.stop()
                results[variant].append(row)
                print(f"  [{rep + 1}/{args.repeats}] {variant}: {row}", flush=True)
    rows = []
    for variant in variants:
        rs = results[variant]
        rows.append(
            [
                variant,
                f"{median([float(r['rps']) for r in rs]):.0f}",
                f"{median([float(r['wrk_p99']) for r in rs]):.0f}",
                f"{median([float(r['cpu']) for r in rs]):.2f}",
                f"{median([float(r['p50']) for r in rs]):.1f}",
                f"{median([float(r['p99']) for r in rs]):.1f}",
                "none" if all(float(r["lost"]) <= 0 for r in rs) else "LOST",
                "; ".join(str(r["load"]) for r in rs),
            ]
        )
    print(
        f"\nwrk -t1 -c16 -d{args.duration}s, then open loop 200 req/s for {args.duration} s, "
        f"worker off, median of {args.repeats}"
    )
    header = [
        "store",
        "202/s (c16)",
        "p99 ms (c16)",
        "CPU ms/202",
        "p50 ms @200/s",
        "p99 ms @200/s",
        "202 not stored",
        "load (wrk / open loop)",
    ]
    print(table(rows, header))


if __name__ == "__main__":
    main()
