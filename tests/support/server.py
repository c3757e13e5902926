"""Run the real service (`python -m trigger_service serve`) as a subprocess for end-to-end tests.

    with running_service(env, tmp_path / "service.log") as service:
        httpx.post(f"{service.url}/webhooks/storage", ...)
        service.kill()                # SIGKILL, e.g. to test durability
    # leaving the block stops it: SIGTERM, then SIGKILL after a grace period

`env` holds the TRIGGER_* settings (TRIGGER_DATABASE_URL, TRIGGER_RULES_PATH, ...); every
TRIGGER_* variable of the test process itself is dropped so nothing leaks in. The port is a free
one on 127.0.0.1 unless given. stdout and stderr go to `log_path`; a start that fails raises with
the log's tail. Relative default paths (var/...) land in the log file's folder, the process's
working directory, never in the repository.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from demo import serving
from demo.ports import free_port  # also imported from here by tests

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE = (sys.executable, "-m", "trigger_service", "serve")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ServiceProcess:
    """One running `serve` process; `url` is its base URL (http://127.0.0.1:PORT)."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log_file: IO[bytes] | None = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def error_lines(self) -> list[str]:
        """Log lines at level error/critical, and traceback starts (JSON or plain logs)."""
        markers = (
            '"level": "error"',
            '"level": "critical"',
            "Traceback (most recent call",
            " ERROR ",
            " CRITICAL ",
        )
        return [line for line in self.log().splitlines() if any(m in line for m in markers)]

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as if the machine lost the process."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close_log()

    def stop(self, grace_seconds: float = 10.0) -> int | None:
        """SIGTERM (uvicorn shuts down gracefully), SIGKILL if still alive after the grace."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(10)
        self._close_log()
        return self.process.returncode

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()


def start_service(
    env: Mapping[str, str],
    log_path: Path,
    *,
    port: int | None = None,
    args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
) -> ServiceProcess:
    """Start `serve` with `env` (TRIGGER_* settings) and return once GET /readyz answers 200.

    `args` are extra `serve` arguments (e.g. "--no-worker"). Raises RuntimeError, with the tail
    of the log, if the process exits or is not ready within `ready_timeout` seconds.
    """
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    child_env.update(env)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [*SERVE, "--host", "127.0.0.1", "--port", str(port), *args],
        env=child_env,
        cwd=log_path.parent,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    service = ServiceProcess(process, port, log_path, log_file)
    try:
        wait_ready(service, ready_timeout)
    except BaseException:
        service.stop(grace_seconds=2)
        raise
    return service


def wait_ready(service: ServiceProcess, timeout: float) -> None:
    """Return once the service answers GET /readyz with 200.

    Raises RuntimeError, with the tail of its log, if it exits first or after `timeout` seconds.
    """
    try:
        serving.wait_ready(service.url, service.process, timeout)
    except serving.NotReady as exc:
        raise RuntimeError(
            f"service on port {service.port} {exc}; log tail:\n{tail(service.log_path)}"
        ) from None


@contextlib.contextmanager
def running_service(
    env: Mapping[str, str],
    log_path: Path,
    *,
    port: int | None = None,
    args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
) -> Iterator[ServiceProcess]:
    """start_service(...) for the block; stopped (SIGTERM, then SIGKILL) when it ends."""
    service = start_service(env, log_path, port=port, args=args, ready_timeout=ready_timeout)
    try:
        yield service
    finally:
        service.stop()
