"""GitOps benchmark: push -> decision -> KFP run created, and the branch poll's cost.

    .venv/bin/python bench/push_bench.py --part push            # this checkout's code
    .venv/bin/python bench/push_bench.py --part poll
    cd /tmp && PYTHONDONTWRITEBYTECODE=1 /work/main/.venv/bin/python \
        /work/wt-10/bench/push_bench.py --part push --code /work/main   # another checkout

push: a real git repository (file://) holding a compiled one-step pipeline (pipeline.yaml); the
KFP REST double (tests/support/kfp_double.KfpDouble) on loopback; Services built in-process from
`--code` (SQLite WAL synchronous=FULL, backend kfp with KfpBackend.from_settings), worker thread
running. Each push commits a changed pipeline.yaml (so every push is a new pipeline version: git
fetch, archive, upload_version, run) and stores the push event a webhook would, then wakes the
worker, one push every --interval seconds. Latency = the double's answer to POST /runs for that
push's run - the event's received_at: the git round trips (ls-remote, fetch, diff at decision
time; ls-remote, relation at fire time), the upload and the run creation included. The first
push also creates the pipeline and the experiment: reported apart.

poll: BranchPoller.poll_due() over N tracked branches, when nothing moved (the steady state)
and when every branch moved: all in one repository (one `git ls-remote` per interval) and one
repository each (one per branch). Wall time and CPU (this process + git children) per poll.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
parser.add_argument("--part", choices=["push", "poll", "all"], default="all")
parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
parser.add_argument("--pushes", type=int, default=20)
parser.add_argument("--interval", type=float, default=1.5, help="seconds between pushes")
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--branches", type=int, default=100)
ARGS = parser.parse_args()
sys.path.insert(0, str(ARGS.code.resolve()))

from tests.support.kfp_double import KfpDouble, RecordedRequest  # noqa: E402
from tests.support.repo import GitRepo, git, rules_text  # noqa: E402
from tests.support.tiny_pipeline import compile_tiny  # noqa: E402
from trigger_service.events import CodeSubject, Event, EventKind, make_event_id  # noqa: E402
from trigger_service.service import Services  # noqa: E402
from trigger_service.settings import Settings  # noqa: E402
from trigger_service.submit.kfp_remote import KfpBackend  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5))) - 1]


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def push_event(repo: GitRepo, after: str, before: str, n: int) -> Event:
    subject = CodeSubject(
        repository=repo.url,
        repository_name="team/songs",
        ref="refs/heads/main",
        branch="main",
        tag=None,
        before=before,
        after=after,
        changed_paths=("pipeline.yaml",),
        pusher="bench",
    )
    delivery = f"bench-{n}-{after}"
    return Event(
        make_event_id("github", delivery),
        EventKind.CODE,
        "github",
        subject,
        datetime.now(UTC),
        delivery,
    )


def one_push_run(tmp: Path, compiled: str) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    repo = GitRepo(run_dir / "repo")
    previous = repo.commit({"pipeline.yaml": compiled}, "init")
    (run_dir / "rules.yaml").write_text(rules_text(repo.url, "parallel", 0))
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
            for n in range(ARGS.pushes):
                delay = start + n * ARGS.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                # Committed just before its push: git's head is the pushed commit (an earlier
                # commit would make this push's run the next one's, as git decides).
                head = repo.commit({"pipeline.yaml": f"{compiled}# push {n}\n"}, f"push {n}")
                services.inbox.store([push_event(repo, head, previous, n)])
                services.worker_wakeup()
                previous = head
            deadline = time.monotonic() + 120
            while len(created) < ARGS.pushes and time.monotonic() < deadline:
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
    return {
        "created": len(created),
        "first": latencies[0] if latencies else float("nan"),
        "rest": latencies[1:],
        "load": load,
    }


def part_push(tmp: Path) -> None:
    package = tmp / "compiled.yaml"
    compile_tiny(package)
    compiled = package.read_text()
    results = []
    for rep in range(ARGS.repeats):
        r = one_push_run(tmp, compiled)
        results.append(r)
        print(
            f"  [{rep + 1}/{ARGS.repeats}] {r['created']}/{ARGS.pushes} runs; first "
            f"{r['first']:.0f} ms; rest p50 {pct(r['rest'], 50):.0f} ms p99 "
            f"{pct(r['rest'], 99):.0f} ms max {max(r['rest'], default=float('nan')):.0f} ms; "
            f"load {r['load']}",
            flush=True,
        )
    rest = [v for r in results for v in r["rest"]]
    print(
        f"\npush -> KFP run created ({ARGS.code}): {len(rest)} pushes after the first of each "
        f"repeat: p50 {pct(rest, 50):.0f} ms, p99 {pct(rest, 99):.0f} ms; first push "
        f"{sorted(r['first'] for r in results)[len(results) // 2]:.0f} ms (median)"
    )


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def poll_rules(repos: list[str], branches: list[list[str]]) -> str:
    lines = ["pipelines:"]
    for i, url in enumerate(repos):
        lines += [
            f"  - name: p{i}",
            "    source:",
            f"      repository: {url}",
            f"      branch: {branches[i][0]}",
            "      package_path: pipeline.yaml",
            "      poll_seconds: 60",
        ]
    lines.append("triggers:")
    for i, names in enumerate(branches):
        listed = ", ".join(names)
        lines += [f"  - name: code{i}", "    on: code", f"    pipeline: p{i}"]
        lines.append(f"    branches: [{listed}]")
    return "\n".join(lines) + "\n"


def measure_poll(tmp: Path, layout: str) -> list[str]:
    from trigger_service.database import create_schema, make_engine
    from trigger_service.inbox import Inbox
    from trigger_service.rules import parse_rules
    from trigger_service.versions.git import GitCache
    from trigger_service.versions.poll import BranchPoller

    root = Path(tempfile.mkdtemp(dir=tmp))
    count = ARGS.branches
    repos: list[GitRepo] = []
    if layout == "one repository":
        repo = GitRepo(root / "repo")
        repo.commit({"pipeline.yaml": "# v1\n"}, "init")
        for b in range(count):
            git(repo.path, "branch", f"b{b:03d}")
        repos = [repo]
        rules = poll_rules([repo.url], [[f"b{b:03d}" for b in range(count)]])
    else:
        for b in range(count):
            repo = GitRepo(root / f"repo{b:03d}")
            repo.commit({"pipeline.yaml": "# v1\n"}, "init")
            repos.append(repo)
        rules = poll_rules([r.url for r in repos], [["main"] for _ in repos])
    engine = make_engine(f"sqlite:///{root / 'trigger.db'}")
    create_schema(engine)
    parsed = parse_rules(rules, "rules.yaml")
    clock = [1_000_000.0]
    poller = BranchPoller(
        GitCache(root / "cache"),
        Inbox(engine),
        lambda: parsed,
        lambda _p, _b: "f" * 40,  # a current version, so moved heads become events
        lambda: None,
        clock=lambda: clock[0],
    )
    rows = []
    for label, move in (("first poll", False), ("nothing moved", False), ("all moved", True)):
        if move:
            for r, repo in enumerate(repos):
                branches = [f"b{b:03d}" for b in range(count)] if len(repos) == 1 else ["main"]
                for name in branches:
                    git(repo.path, "commit", "-q", "--allow-empty", "-m", f"move {r} {name}")
                    if name != "main":  # every branch moves to its own new commit
                        git(repo.path, "branch", "-f", name, "HEAD")
        clock[0] += 61
        started, cpu0 = time.perf_counter(), cpu()
        stored = poller.poll_due()
        wall, used = time.perf_counter() - started, cpu() - cpu0
        rows.append(
            f"| {layout} | {label} | {wall * 1000:.0f} ms | {used * 1000:.0f} ms | {stored} |"
        )
    engine.dispose()
    return rows


def part_poll(tmp: Path) -> None:
    print(f"\npoll of {ARGS.branches} tracked branches (load {loadavg()})")
    print("| layout | poll | wall | CPU (process + git) | events stored |")
    print("|---|---|---|---|---|")
    for layout in ("one repository", "one repository each"):
        for row in measure_poll(tmp, layout):
            print(row, flush=True)


def main() -> None:
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    print(f"code: {ARGS.code}; {version.strip()}; {os.cpu_count()} CPUs; load {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="push-bench-") as tmp:
        if ARGS.part in ("push", "all"):
            part_push(Path(tmp))
        if ARGS.part in ("poll", "all"):
            part_poll(Path(tmp))


if __name__ == "__main__":
    main()
