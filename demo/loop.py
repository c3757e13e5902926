"""`make demo`: the whole loop with nobody at the keyboard. Start the service, send a manual
trigger, a MinIO storage event and an Alertmanager alert, follow the runs (a line per new step,
a heartbeat while one runs long), print the published models with their lineage, stop."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from demo.payloads import drift_alert, storage_event
from demo.ports import free_port
from demo.s3 import client as s3_client
from demo.s3 import start_demo_s3, stop_moto
from demo.serving import NotReady, wait_ready
from demo.workspace import BUCKET, Demo, demo_data, prepare


def cmd_loop(args: argparse.Namespace) -> int:
    """Start everything on free ports, send one event of each kind, follow the runs, report the
    published models with their lineage, stop. 0 when every run succeeded and a model was
    published, 1 otherwise (or after `--timeout` seconds)."""
    var = Path(args.var)
    if var.exists() and not args.keep:
        shutil.rmtree(var)
    demo = prepare(var, free_port(), free_port())
    s3 = start_demo_s3(demo)
    log_path = demo.var / "demo" / "service.log"
    log = log_path.open("ab")
    service = subprocess.Popen(
        [sys.executable, "-m", "trigger_service", "serve"],
        env={**os.environ, **demo.service_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        try:
            wait_ready(demo.url, service, 60)
        except NotReady as exc:
            raise SystemExit(f"the service {exc}; see {log_path}") from None
        print(f"service ready at {demo.url} (log: {log_path})")
        with httpx.Client(base_url=demo.url, timeout=30) as client:
            return _loop(client, demo, started, args.timeout)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
        stop_moto(s3)
        log.close()


def _loop(client: httpx.Client, demo: Demo, started: float, timeout: float) -> int:
    _send(
        client,
        "/trigger",
        demo.tokens["manual"],
        {"pipeline": "songs", "reason": "demo: by hand"},
        "manual trigger",
    )
    key = "songs/batch-2.csv"
    batch = demo.var / "data" / "batch-2.csv"
    demo_data(batch, "--seed", "7")
    s3_client(demo).fput_object(BUCKET, key, str(batch))
    _send(
        client,
        "/webhooks/storage",
        demo.tokens["storage"],
        storage_event(BUCKET, key, batch.stat().st_size),
        f"MinIO event for {key}",
    )
    _send(
        client,
        "/webhooks/alertmanager",
        demo.tokens["alertmanager"],
        drift_alert(),
        "Alertmanager drift alert",
    )

    deadline = time.monotonic() + timeout
    progress = Progress(started)
    while time.monotonic() < deadline:
        events = client.get("/events", params={"limit": 500}).json()["items"]
        runs = client.get("/runs").json()["items"]
        undecided = [e for e in events if e["status"] in ("pending", "claimed")]
        open_decisions = [
            d
            for d in client.get("/decisions", params={"limit": 500}).json()["items"]
            if d["state"] in ("collecting", "queued", "ready", "submitting")
        ]
        active = [r for r in runs if r["state"] in ("submitting", "pending", "running")]
        for run in active:
            shown = progress.line(run["id"], f"{run['state']:9s} {_step_line(run)}")
            if shown is not None:
                print(shown, flush=True)
        if runs and not undecided and not open_decisions and not active:
            break
        time.sleep(1.0)
    else:
        print(f"timed out after {timeout:.0f}s", file=sys.stderr)
        return 1
    return _report(client, started)


class Progress:
    """What to print about active runs: each new step once, and while one step runs long a
    heartbeat every `every` seconds that says so, rather than the step's line again (which
    read as if the step, or the run, had started over)."""

    def __init__(self, started: float, every: float = 15.0) -> None:
        self.started = started
        self.every = every
        self._shown: dict[str, tuple[str, float, float]] = {}  # run -> (line, since, printed)

    def line(self, run_id: str, step: str, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        stamp = f"   [{now - self.started:5.0f}s] {run_id}"
        previous, since, printed = self._shown.get(run_id, ("", now, 0.0))
        if step != previous:
            self._shown[run_id] = (step, now, now)
            return f"{stamp} {step}"
        if now - printed > self.every:
            self._shown[run_id] = (step, since, now)
            return f"{stamp}   ... same step, still running ({now - since:.0f}s so far)"
        return None


def _send(client: httpx.Client, path: str, token: str, body: dict[str, Any], what: str) -> None:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    print(f"-> {what}: HTTP {response.status_code} {response.text}", flush=True)
    if response.status_code != 202:
        raise SystemExit(f"{what} was not accepted")


def _step_line(run: dict[str, Any]) -> str:
    """The run's latest `[pipeline]` step line from its log, for a person watching."""
    line = "waiting for the local runner"
    if run.get("log_path") and Path(run["log_path"]).exists():
        for text in Path(run["log_path"]).read_text(errors="replace").splitlines():
            if "[pipeline]" in text:  # kfp.local indents what its tasks print
                line = text[text.index("[pipeline]") :].strip()
    return line


def _report(client: httpx.Client, started: float) -> int:
    runs = client.get("/runs").json()["items"]
    print(f"\n{len(runs)} run(s) in {time.monotonic() - started:.0f}s:")
    for run in sorted(runs, key=lambda r: r["created_at"]):
        detail = run["error"] or (run["result"] or {}).get("reason", "")
        print(f"  {run['id']} {run['state']:9s} version {run['version'][:12]}  {detail}")
    for decision in client.get("/decisions", params={"limit": 500}).json()["items"]:
        print(
            f"  decision {decision['id']} {decision['outcome']:6s} {decision['state']:10s} "
            f"{decision['reason']}"
        )
    models = client.get("/models").json()["items"]
    print(f"\n{len(models)} published model version(s):")
    for model in models:
        lineage = client.get(f"/models/{model['model_name']}/{model['version']}").json()
        run = lineage.get("run") or {}
        decision = run.get("decision") or {}
        events = ", ".join(f"{e['source']}:{e['kind']}" for e in run.get("events", []))
        metrics = model["metadata"].get("metrics", {})
        print(
            f"  {model['model_name']} v{model['version']}  accuracy "
            f"{metrics.get('accuracy', float('nan')):.3f}  <- run {run.get('id')} "
            f"<- decision {decision.get('id')} ({decision.get('reason')}) <- events [{events}] "
            f"<- commit {str(run.get('version'))[:12]}"
        )
    failed = [r for r in runs if r["state"] != "succeeded"]
    if failed or not models:
        print(
            "\nthe demo did not complete: " + ("a run failed" if failed else "nothing published"),
            file=sys.stderr,
        )
        return 1
    print("\ndemo complete")
    return 0
