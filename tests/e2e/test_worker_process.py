"""`trigger-service worker`: a worker process without the webhook routes decides what another
process stored, serves its own /healthz, /readyz and /metrics on TRIGGER_WORKER_PORT (what the
chart's probes and ServiceMonitor use), and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.repo import GitRepo, rules_text
from tests.support.server import free_port
from trigger_service.database import create_schema, make_engine
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.inbox import Inbox


def test_worker_process_decides_stored_events_and_stops_on_sigterm(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled pipeline\n"}, "init")
    (tmp_path / "rules.yaml").write_text(rules_text(repo.url))
    url = f"sqlite:///{tmp_path / 'trigger.db'}"
    engine = make_engine(url)
    create_schema(engine)
    inbox = Inbox(engine)
    now = datetime.now(UTC)
    inbox.store(
        [
            Event(f"manual-{n}", EventKind.MANUAL, "manual", ManualSubject("songs"), now)
            for n in range(3)
        ]
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    env.update(
        TRIGGER_DATABASE_URL=url,
        TRIGGER_RULES_PATH=str(tmp_path / "rules.yaml"),
        TRIGGER_GIT_CACHE_DIR=str(tmp_path / "git-cache"),
        TRIGGER_BACKEND="shadow",
        TRIGGER_WORKER_PORT=str(port := free_port()),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "trigger_service", "worker"], env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while inbox.depth()["decided"] < 3:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker did not decide the stored events"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # the HTTP server may come up a moment after the worker's first tick
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the worker serves no /healthz"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz", timeout=2).json() == {"status": "ready"}
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        # Its own counters (the decisions it made) and the whole inbox's depth at scrape time.
        assert 'trigger_decisions_total{outcome="run",trigger="by-hand"}' in metrics
        assert 'trigger_inbox_depth{status="decided"} 3.0' in metrics
        # A worker receives nothing: no webhook or operator routes, no API docs.
        for path in ("/webhooks/github", "/trigger", "/events", "/docs"):
            assert httpx.post(f"{base}{path}", timeout=2).status_code in (404, 405), path
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=20)
    # uvicorn shuts down gracefully (the lifespan stops the worker loop), then re-raises the
    # SIGTERM it caught, as `serve` does: the exit is the signal's, after a clean shutdown.
    log = worker.stderr.read().decode() if worker.stderr else ""
    assert code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log
    assert all(e["status"] == "decided" for e in inbox.list())
