"""A dead worker ends `serve` with exit code 3, not by its own SIGTERM; Ctrl-C ends it with 0.

end_process() stops the server with SIGTERM to itself; uvicorn re-raises a captured signal
after its shutdown, so the process used to die of SIGTERM (status -15), which systemd counts
as a clean stop and does not restart. A real `serve` process, its worker made to die at the
first tick (the only patch: the tick, in the child before the CLI runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from demo.serving import wait_ready
from tests.support.repo import GitRepo, rules_text
from tests.support.server import REPO_ROOT, SERVE, free_port
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


def service_env(tmp_path: Path) -> dict[str, str]:
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
    return env


def test_a_dead_worker_exits_with_its_own_code(tmp_path: Path) -> None:
    env = service_env(tmp_path)
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


def test_ctrl_c_stops_serve_with_0_and_no_traceback(tmp_path: Path) -> None:
    """uvicorn raises the SIGINT it captured again after its graceful shutdown; `uvicorn.run`
    swallows the KeyboardInterrupt, `serve` used to print it as a traceback (`make run`)."""
    port = free_port()
    process = subprocess.Popen(
        [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
        env=service_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A terminal's Ctrl-C: SIGINT at its default, even if this test runs with it ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, 60)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output[-800:]
    assert "Traceback" not in output, output[-800:]
