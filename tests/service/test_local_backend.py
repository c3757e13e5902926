"""The local backend's queue without TensorFlow: a stand-in pipeline command records what it was
asked to run. (tests/e2e/test_local_backend.py runs the real pipeline.)"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from trigger_service.errors import PermanentError
from trigger_service.submit.base import RunRequest, RunState, VersionRef, VersionSpec
from trigger_service.submit.local import LocalBackend

STAND_IN = """\
import json, sys, time, pathlib
args = sys.argv[1:]
result = pathlib.Path(args[args.index("--result-file") + 1])
log = pathlib.Path(__file__).with_name("calls.jsonl")
with log.open("a") as out:
    out.write(json.dumps({"args": args, "start": time.time()}) + "\\n")
time.sleep(float(pathlib.Path(__file__).with_name("sleep").read_text() or 0))
ok = "epochs=0" not in args
result.write_text(json.dumps({"status": "succeeded" if ok else "failed", "published": ok,
    "model_version": 1 if ok else None, "failed_step": None if ok else "validate",
    "error": None if ok else "validation failed: 5 rows"}))
with log.open("a") as out:
    out.write(json.dumps({"end": time.time()}) + "\\n")
sys.exit(0 if ok else 1)
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "pipeline_stand_in.py"
    script.parent.mkdir()
    script.write_text(STAND_IN)
    (script.parent / "sleep").write_text("0.3")
    return script


def backend_for(tmp_path: Path, stand_in: Path) -> LocalBackend:
    wrapper = tmp_path / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {stand_in} "$@"\n')
    wrapper.chmod(0o755)
    return LocalBackend(
        runs_dir=tmp_path / "runs",
        models_root=tmp_path / "models",
        data_dir=tmp_path / "data",
        python=str(wrapper),
    )


def request(tmp_path: Path, name: str, **params: object) -> RunRequest:
    package = tmp_path / "pipeline.yaml"
    package.write_text("# compiled\n")
    version = VersionRef("songs", "abc", "songs", "abc", package)
    return RunRequest(
        name, version, {"data_uri": "songs.csv", "model_name": "songs", **params}, "songs"
    )


def wait_finished(backend: LocalBackend, run: str, timeout: float = 30) -> RunState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = backend.status(run).state
        if state.finished:
            return state
        time.sleep(0.05)
    raise AssertionError(f"{run} did not finish")


def test_runs_one_at_a_time_in_order_with_parameters(tmp_path: Path, stand_in: Path) -> None:
    backend = backend_for(tmp_path, stand_in)
    first = backend.submit(request(tmp_path, "run-a", epochs=3))
    second = backend.submit(request(tmp_path, "run-b", epochs=0))
    assert backend.submit(request(tmp_path, "run-a")) == first, "idempotent on the run name"
    assert backend.find_run("run-b") == second and backend.find_run("nope") is None

    assert wait_finished(backend, first) is RunState.SUCCEEDED
    assert wait_finished(backend, second) is RunState.FAILED
    failed = backend.status(second)
    assert failed.failed_step == "validate" and "5 rows" in (failed.error or "")
    assert backend.status(first).outputs["model_version"] == 1

    lines = [json.loads(x) for x in (stand_in.parent / "calls.jsonl").read_text().splitlines()]
    starts = [x for x in lines if "args" in x]
    ends = [x["end"] for x in lines if "end" in x]
    assert ends[0] <= starts[1]["start"], "the second run started after the first ended"
    args = starts[0]["args"]
    assert args[args.index("--data-uri") + 1] == str((tmp_path / "data" / "songs.csv").resolve())
    assert args[args.index("--models-root") + 1] == str((tmp_path / "models").resolve())
    assert "epochs=3" in args
    backend.stop()


def test_a_run_cut_short_by_a_restart_fails_and_the_queue_resumes(
    tmp_path: Path, stand_in: Path
) -> None:
    (stand_in.parent / "sleep").write_text("0")
    backend = backend_for(tmp_path, stand_in)
    folder = tmp_path / "runs"
    # What a killed service leaves behind: one run marked running, one still queued.
    for name, state in (("cut", "running"), ("waiting", "pending")):
        (folder / name).mkdir(parents=True)
        req = request(tmp_path, name)
        params = {**req.params, "models_root": str(tmp_path / "models")}
        (folder / name / "request.json").write_text(
            json.dumps({"package": str(req.version.package_path), "params": params})
        )
        (folder / name / "state.json").write_text(json.dumps({"state": state, "queued_at": 1}))
    assert backend.status("cut").state is RunState.FAILED
    assert "interrupted" in (backend.status("cut").error or "")
    assert wait_finished(backend, "waiting") is RunState.SUCCEEDED
    with pytest.raises(PermanentError):
        backend.status("never-submitted")
    with pytest.raises(PermanentError):
        backend.ensure_version(VersionSpec("songs", "v", tmp_path / "missing.yaml"))
    backend.stop()
