"""A dead worker ends `serve` with exit code 3, not by its own SIGTERM.

end_process() stops the server with SIGTERM to itself; uvicorn re-raises a captured signal
after its shutdown, so the process used to die of SIGTERM (status -15), which systemd counts
as a clean stop and does not restart. A real `serve` process, its worker made to die at the
first tick (the only patch: the tick, in the child before the CLI runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.repo import GitRepo, rules_text
from tests.support.server import REPO_ROOT, free_port
from trigger_service.lifecycle import EXIT_WORKER_DIED

DIE_AT_FIRST_TICK = """
import sys
from trigger_service import cli
from trigger_service.worker import loop

def tick(self):
    raise SystemExit("simulated: something no tick survives")

loop.Worker.tick = tick
sys.exit(cli.main(["serve", "--host", "127.0.0.1", "--port", sys.argv[1]]))
"""


def test_a_dead_worker_exits_with_its_own_code(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled pipeline v1\n"}, "init")
    (tmp_path / "rules.yaml").write_text(rules_text(repo.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
            "TRIGGER_RULES_PATH": str(tmp_path / "rules.yaml"),
            "TRIGGER_BACKEND": "shadow",
            "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
            "TRIGGER_LOG_JSON": "false",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", DIE_AT_FIRST_TICK, str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "the worker thread died" in done.stdout + done.stderr
    assert done.returncode == EXIT_WORKER_DIED, (done.returncode, done.stderr[-800:])
