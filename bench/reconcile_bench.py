"""Reconcile listing cost: time, CPU and peak memory of one pass over N objects under one prefix.

    .venv/bin/python bench/reconcile_bench.py --objects 100000

Starts moto's S3 server on loopback, fills one prefix with N small objects (boto3, parallel
threads; the fill time is reported), then runs reconcile passes of the real `Reconciler`, each
in a fresh child process so its peak RSS is its own:

- baseline: the trigger's first listing (every object unseen: all go into `seen_objects`);
- steady: a later listing where every object was seen (the cost paid every interval);
- new: a steady listing with 1 % new objects (they become events).

For each: wall time, CPU seconds of the service process (user + system), peak RSS and its growth
over the process before the pass, and moto's own CPU (the S3 server's cost, MinIO's in
production). The interval at which a steady pass stays under 5 % of one core is CPU / 0.05.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench._common import cpu_seconds, loadavg, rss_mb  # noqa: E402
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, moto_server  # noqa: E402

BUCKET = "datasets"
PREFIX = "songs/"

RULES = """\
pipelines:
  - name: songs
    source: {{repository: /nonexistent, package_path: pipeline.yaml}}
triggers:
  - name: new-data
    on: data
    pipeline: songs
    bucket: {bucket}
    prefix: {prefix}
    reconcile_seconds: 600
"""


def fill(endpoint: str, keys: list[str], threads: int) -> float:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=f"http://{endpoint}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(max_pool_connections=threads * 2, retries={"max_attempts": 5}),
    )
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=BUCKET, Key=key, Body=b"x"), keys))
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    """One pass in this process; prints a JSON line."""
    from minio import Minio

    from trigger_service.database import create_schema, make_engine
    from trigger_service.reconcile import Reconciler
    from trigger_service.reconcile.listing import make_client
    from trigger_service.rules import parse_rules

    rules = parse_rules(RULES.format(bucket=BUCKET, prefix=PREFIX))
    engine = make_engine(f"sqlite:///{args.db}")
    create_schema(engine)
    client: Minio = make_client(args.endpoint, ACCESS_KEY, SECRET_KEY, False)
    reconciler = Reconciler(engine, lambda: rules, client, clock=lambda: time.time() + args.skew)
    [trigger] = reconciler.triggers()
    rss_before = rss_mb(os.getpid())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = reconciler.reconcile(trigger)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert result is not None, "the pass was not due or failed"
    print(
        json.dumps(
            {
                "listed": result.listed,
                "unseen": result.unseen,
                "new_events": result.new_events,
                "wall_s": wall,
                "cpu_s": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
                "rss_before_mb": rss_before,
                # VmHWM, not ru_maxrss: Linux carries the forking parent's RSS into the
                # child's ru_maxrss across exec, and the parent holds the key list and boto3.
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def run_pass(endpoint: str, db: Path, skew: float, moto_pid: int) -> dict:
    moto_before = cpu_seconds(moto_pid)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--endpoint",
            endpoint,
            "--db",
            str(db),
            "--skew",
            str(skew),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    figures["moto_cpu_s"] = cpu_seconds(moto_pid) - moto_before
    return figures


def moto_pid_of(endpoint: str) -> int:
    port = endpoint.rsplit(":", 1)[1]
    found = subprocess.run(
        ["pgrep", "-n", "-f", f"moto_server -H 127.0.0.1 -p {port}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(found.stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--steady-runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--skew", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    keys = [f"{PREFIX}part-{i:07d}.csv" for i in range(args.objects)]
    extra = [f"{PREFIX}new-{i:07d}.csv" for i in range(max(1, args.objects // 100))]
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        moto_pid = moto_pid_of(endpoint)
        print(f"load average before: {loadavg()}", flush=True)
        fill_s = fill(endpoint, keys, args.threads)
        print(
            f"fill: {args.objects} objects in {fill_s:.1f} s "
            f"({args.objects / fill_s:.0f}/s, {args.threads} threads)",
            flush=True,
        )
        db = Path(tmp) / "trigger.db"
        report = {"objects": args.objects, "fill_s": fill_s, "passes": {}}
        skew = 0.0
        report["passes"]["baseline"] = run_pass(endpoint, db, skew, moto_pid)
        print("baseline", report["passes"]["baseline"], flush=True)
        steady = []
        for _ in range(args.steady_runs):
            skew += 601  # the next pass is due
            steady.append(run_pass(endpoint, db, skew, moto_pid))
            print("steady", steady[-1], flush=True)
        report["passes"]["steady"] = steady
        fill(endpoint, extra, args.threads)
        skew += 601
        report["passes"]["new_1pct"] = run_pass(endpoint, db, skew, moto_pid)
        print("new 1 %", report["passes"]["new_1pct"], flush=True)
        cpu = sorted(p["cpu_s"] for p in steady)[len(steady) // 2]
        print(
            f"steady pass, median CPU {cpu:.2f} s: under 5 % of one core at an interval of "
            f"{cpu / 0.05:.0f} s or more",
            flush=True,
        )
        print(f"load average after: {loadavg()}", flush=True)
        print(json.dumps(report))


if __name__ == "__main__":
    main()
