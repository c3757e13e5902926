"""`trigger-service worker`: a worker process without the HTTP server decides what another
process stored, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.support.repo import GitRepo, rules_text
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
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=20)
    assert code == 0
    assert all(e["status"] == "decided" for e in inbox.list())
