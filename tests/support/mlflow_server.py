"""A real `mlflow server` on loopback with a SQLite backend store, for the registry tests.

MLflow is heavy and pins what it likes, so it lives in its own virtualenv, `.venv-mlflow`
(`make mlflow`; `make test` creates it once), never in the service's dependencies. Without it
the tests that need it skip and say how to get it.

    with mlflow_server(tmp_path) as server:   # started, /health answered
        server.url                             # http://127.0.0.1:PORT
        server.stop(); server.start()          # an outage and a recovery, same store and port
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support.server import REPO_ROOT, free_port, tail

MLFLOW_VENV = REPO_ROOT / ".venv-mlflow"


def mlflow_executable() -> Path | None:
    path = MLFLOW_VENV / "bin" / "mlflow"
    return path if path.exists() else None


@dataclass
class MlflowServer:
    executable: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mlflow.log"

    def start(self, timeout: float = 120.0) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(self.executable),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.workdir / 'mlflow.db'}",
                "--default-artifact-root",
                str(self.workdir / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends its workers too
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{tail(self.log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server not ready after {timeout:.0f} s:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def mlflow_server(workdir: Path) -> Iterator[MlflowServer]:
    executable = mlflow_executable()
    if executable is None:
        pytest.skip(f"MLflow is not installed in {MLFLOW_VENV}: run `make mlflow` (make test does)")
    workdir.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(executable, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
