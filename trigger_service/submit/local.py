"""The local backend (the embedded default): runs a pipeline version with kfp.local.

Each run is a folder under runs_dir holding its request, its state, its log and the result the
pipeline CLI writes. One runner thread takes the folders in order and runs each as a child
process (`python -m pipeline run --local --package ...`), so training never happens in the
request path and only one run uses the machine at a time. State lives in the folder, so a
restarted service finds its queue again; a run cut short by a restart is marked failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from trigger_service.errors import PermanentError, RejectedInput
from trigger_service.submit.base import RunRequest, RunState, RunStatus, VersionRef, VersionSpec
from trigger_service.validation import segment

log = logging.getLogger(__name__)

# What a run may inherit from the service's environment: tools, locale, proxies and package
# indexes. Never a TRIGGER_* variable: the run executes the commit's component code.
RUN_ENV_ALLOWED = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_TRUSTED_HOST",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
    }
)


def run_environment(inherited: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """The environment of a local run: the allow-listed part of `inherited`, plus `extra`
    (the S3 endpoint and keys the service passes on purpose)."""
    env = {k: v for k, v in inherited.items() if k in RUN_ENV_ALLOWED}
    return {**env, **extra, "PYTHONUNBUFFERED": "1"}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group has ended
        os.killpg(pgid, signum)


class LocalBackend:
    """Runs with `kfp.local` in a child process, one at a time (module docstring).

    `runs_dir`: each run's queue entry, state and log; `models_root` and `data_dir`: what a run
    reads and publishes; `env`: added to the run's environment; `timeout`: seconds a run may
    take; `python`: the interpreter that runs the pipeline."""

    name = "local"

    def __init__(
        self,
        *,
        runs_dir: Path,
        models_root: Path,
        data_dir: Path,
        env: dict[str, str] | None = None,
        timeout: float = 1800.0,
        python: str = sys.executable,
    ) -> None:
        self.runs_dir = runs_dir.resolve()
        self.models_root = models_root.resolve()
        self.data_dir = data_dir.resolve()
        self.env = env or {}
        self.timeout = timeout
        self.python = python
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: subprocess.Popen[bytes] | None = None
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    # --- Backend interface
    def ensure_version(self, spec: VersionSpec) -> VersionRef:
        if not spec.package_path.is_file():
            raise PermanentError(f"compiled pipeline {spec.package_path} does not exist")
        return VersionRef(
            spec.pipeline, spec.version, spec.pipeline, spec.version, spec.package_path
        )

    def submit(self, request: RunRequest) -> str:
        folder = self.runs_dir / request.run_name
        if (folder / "state.json").exists():
            return request.run_name
        try:  # a template may render it from an alert label: checked where the path is built
            segment(request.params.get("model_name", "songs"), "model_name")
        except RejectedInput as exc:
            raise PermanentError(str(exc)) from None
        folder.mkdir(parents=True, exist_ok=True)
        params = {**request.params, "models_root": str(self.models_root)}
        if "data_uri" not in params:
            raise PermanentError("the local backend needs a data_uri parameter")
        data_uri = str(params["data_uri"])
        if "://" not in data_uri and not data_uri.startswith("/"):
            params["data_uri"] = str(self.data_dir / data_uri)  # relative: under the data folder
        _write_json(
            folder / "request.json",
            {
                "package": str(request.version.package_path),
                "version": request.version.version,
                "params": params,
                "description": request.description,
            },
        )
        _write_json(folder / "state.json", {"state": "pending", "queued_at": time.time()})
        self._ensure_runner()
        self._wake.set()
        return request.run_name

    def find_run(self, run_name: str) -> str | None:
        return run_name if (self.runs_dir / run_name / "state.json").exists() else None

    def status(self, external_id: str) -> RunStatus:
        folder = self.runs_dir / external_id
        state = _read_json(folder / "state.json")
        if not state:
            raise PermanentError(f"local run {external_id} does not exist")
        if state["state"] in ("pending", "running"):
            # After a restart the queue is found by polling: start the runner (and fail any
            # run the previous process left half done).
            self._ensure_runner()
            state = _read_json(folder / "state.json")
        result = _read_json(folder / "result.json")
        params = _read_json(folder / "request.json").get("params", {})
        outputs = (
            {
                "published": bool(result.get("published")),
                "model_name": params.get("model_name", "songs"),
                "model_version": result.get("model_version"),
                "reason": result.get("reason"),
                "metrics": result.get("metrics"),
            }
            if result
            else {}
        )
        return RunStatus(
            state=RunState(state["state"]),
            external_id=external_id,
            error=state.get("error") or result.get("error"),
            failed_step=result.get("failed_step"),
            outputs=outputs,
            log_path=str(folder / "run.log"),
        )

    def cancel(self, external_id: str) -> None:
        """Stop a queued or running run: the state is written first (so the runner, in this
        process or another, records `canceled` and not a failure), then the run's whole process
        group (kfp.local and every task it started) gets SIGTERM, and SIGKILL 10 s later."""
        folder = self.runs_dir / external_id
        with self._lock:
            state = _read_json(folder / "state.json")
            if state.get("state") not in ("pending", "running"):
                return
            _write_json(folder / "state.json", {**state, "state": "canceled"})
            pid = state.get("pid") if state.get("state") == "running" else None
        if isinstance(pid, int) and pid > 1:
            _signal_group(pid, signal.SIGTERM)
            timer = threading.Timer(10.0, _signal_group, (pid, signal.SIGKILL))
            timer.daemon = True
            timer.start()

    # --- the runner thread
    def _ensure_runner(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._recover()
                self._thread = threading.Thread(target=self._loop, name="local-runner", daemon=True)
                self._thread.start()

    def _recover(self) -> None:
        for state_file in self.runs_dir.glob("*/state.json"):
            state = _read_json(state_file)
            if state.get("state") == "running":
                error = "interrupted: the service stopped during the run"
                _write_json(state_file, {**state, "state": "failed", "error": error})

    def _next(self) -> Path | None:
        pending = []
        for state_file in self.runs_dir.glob("*/state.json"):
            state = _read_json(state_file)
            if state.get("state") == "pending":
                pending.append((state.get("queued_at", 0), state_file.parent))
        return min(pending)[1] if pending else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            folder = self._next()
            if folder is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._run(folder)
            except Exception as exc:  # one broken run folder must not stop the queue
                log.exception("local run %s could not run", folder.name)
                state = _read_json(folder / "state.json")
                _write_json(folder / "state.json", {**state, "state": "failed", "error": repr(exc)})

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            if self._current is not None and self._current.poll() is None:
                os.killpg(self._current.pid, signal.SIGTERM)

    def _run(self, folder: Path) -> None:
        request = _read_json(folder / "request.json")
        params = dict(request["params"])
        command = [
            self.python,
            "-m",
            "pipeline",
            "run",
            "--local",
            "--package",
            request["package"],
            "--data-uri",
            str(params.pop("data_uri")),
            "--models-root",
            str(params.pop("models_root")),
            "--model-name",
            str(params.pop("model_name", "songs")),
            "--pipeline-root",
            str(folder / "artifacts"),
            "--result-file",
            str(folder / "result.json"),
        ]
        for key, value in params.items():
            command += ["--param", f"{key}={value}"]
        started = time.time()
        with open(folder / "run.log", "ab") as out:
            with self._lock:
                # Read under the lock: a cancel between the queue scan and here wins.
                state = _read_json(folder / "state.json")
                if self._stop.is_set() or state.get("state") != "pending":
                    return
                state = {**state, "state": "running", "started_at": started}
                self._current = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=run_environment(dict(os.environ), self.env),
                    start_new_session=True,
                )
                _write_json(folder / "state.json", {**state, "pid": self._current.pid})
            try:
                code = self._current.wait(timeout=self.timeout)
                error = None if code == 0 else f"pipeline exited with code {code}"
            except subprocess.TimeoutExpired:
                os.killpg(self._current.pid, signal.SIGKILL)
                self._current.wait()
                code, error = -1, f"killed after {self.timeout:.0f}s"
        with self._lock:
            self._current = None
            latest = _read_json(folder / "state.json")
            if latest.get("state") == "canceled":
                return
            result = _read_json(folder / "result.json")
            final = "succeeded" if code == 0 else "failed"
            error = error if code != 0 else None
            if code != 0 and result.get("error"):
                error = result["error"]
            _write_json(
                folder / "state.json",
                {
                    **state,
                    "state": final,
                    "error": error,
                    "finished_at": time.time(),
                    "exit_code": code,
                },
            )
        log.info("local run %s %s in %.1fs", folder.name, final, time.time() - started)
