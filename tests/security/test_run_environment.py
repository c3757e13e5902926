"""A local run executes the commit's component code: it gets only the variables a run needs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from trigger_service.errors import PermanentError
from trigger_service.submit.base import RunRequest, RunState, VersionRef
from trigger_service.submit.local import LocalBackend


def test_a_local_run_sees_no_trigger_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGER_GITHUB_SECRET", "gh-secret-never-in-a-run")
    monkeypatch.setenv("TRIGGER_KFP_TOKEN", "kfp-token-never-in-a-run")
    monkeypatch.setenv("SOME_UNRELATED_CREDENTIAL", "also-not")
    dump = tmp_path / "env.json"
    script = tmp_path / "dump_env.py"
    script.write_text(
        f"import json, os\nopen({str(dump)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
    )
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    wrapper.chmod(0o755)
    backend = LocalBackend(
        runs_dir=tmp_path / "runs",
        models_root=tmp_path / "models",
        data_dir=tmp_path / "data",
        env={"AWS_ACCESS_KEY_ID": "run-needs-this"},
        python=str(wrapper),
    )
    package = tmp_path / "pipeline.yaml"
    package.write_text("# compiled\n")
    version = VersionRef("songs", "abc", "songs", "abc", package)
    run = backend.submit(RunRequest("run-1", version, {"data_uri": "x.csv"}, "songs"))
    deadline = time.monotonic() + 30
    while backend.status(run).state not in (RunState.SUCCEEDED, RunState.FAILED):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    backend.stop()
    seen = json.loads(dump.read_text())
    assert not [k for k in seen if k.startswith("TRIGGER_")]
    assert "SOME_UNRELATED_CREDENTIAL" not in seen
    assert seen["AWS_ACCESS_KEY_ID"] == "run-needs-this"
    assert seen["PATH"]


@pytest.mark.parametrize("name", ["../../escaped-model", "a/b", ".."])
def test_a_run_whose_model_name_leaves_the_models_root_is_refused(
    tmp_path: Path, name: str
) -> None:
    backend = LocalBackend(
        runs_dir=tmp_path / "runs", models_root=tmp_path / "models", data_dir=tmp_path / "data"
    )
    package = tmp_path / "pipeline.yaml"
    package.write_text("# compiled\n")
    version = VersionRef("songs", "abc", "songs", "abc", package)
    params = {"data_uri": "x.csv", "model_name": name}
    with pytest.raises(PermanentError, match="model_name"):
        backend.submit(RunRequest("run-1", version, params, "songs"))
    assert not (tmp_path / "runs" / "run-1").exists()
