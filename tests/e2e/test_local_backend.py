"""The embedded default end to end: the local backend runs the real pipeline (TensorFlow,
tf2onnx, onnxruntime under kfp.local) from a manual trigger and from a storage event whose
object lives in a real S3-protocol server, and each run's record links the model it published.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from minio import Minio

from demo.payloads import storage_event
from tests.support.repo import GitRepo
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, moto_server
from trigger_service.api import create_app
from trigger_service.service import Services
from trigger_service.settings import Settings

pytestmark = pytest.mark.slow

RULES = """\
pipelines:
  - name: songs
    source:
      repository: {repo}
      package_path: pipeline.yaml
    defaults:
      data_uri: songs.csv
      model_name: songs
      epochs: 4
      accuracy_threshold: 0.4
      champion_tolerance: 0.5
triggers:
  - name: new-data
    on: data
    pipeline: songs
    bucket: datasets
    params:
      data_uri: "{{subject.uri}}"
      trigger_reason: "new data {{subject.key}}"
  - name: by-hand
    on: manual
  - name: strict
    on: manual
    pipelines: [songs]
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def test_manual_and_storage_events_run_the_real_pipeline_and_link_models(
    tmp_path: Path, s3: str
) -> None:
    repo = GitRepo(tmp_path / "repo")
    compiled = tmp_path / "pipeline.yaml"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", "--output", str(compiled)],
        check=True,
        capture_output=True,
    )
    repo.commit({"pipeline.yaml": compiled.read_text()}, "compiled pipeline")
    data_dir = tmp_path / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "demo-data",
            "--output",
            str(data_dir / "songs.csv"),
            "--rows",
            "800",
        ],
        check=True,
        capture_output=True,
    )
    client = Minio(s3, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
    client.make_bucket("datasets")
    client.fput_object("datasets", "songs/new batch.csv", str(data_dir / "songs.csv"))

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(repo=repo.url))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
        rules_path=rules,
        backend="local",
        models_root=tmp_path / "models",
        data_dir=data_dir,
        runs_dir=tmp_path / "runs",
        git_cache_dir=tmp_path / "git-cache",
        manual_token="m",
        storage_token="s",
        s3_endpoint=s3,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        worker_poll_seconds=0.1,
    )
    services = Services.build(settings)
    with TestClient(create_app(services, start_worker=True)) as api:
        manual = api.post(
            "/trigger",
            json={"pipeline": "songs", "reason": "test"},
            headers={"Authorization": "Bearer m"},
        )
        assert manual.status_code == 202
        event = storage_event("datasets", "songs/new batch.csv", 100)
        stored = api.post("/webhooks/storage", json=event, headers={"Authorization": "Bearer s"})
        assert stored.status_code == 202, stored.text

        deadline = time.monotonic() + 600
        seen_states: set[str] = set()
        while time.monotonic() < deadline:
            runs = api.get("/runs").json()["items"]
            seen_states |= {r["state"] for r in runs}
            if len(runs) == 2 and all(r["state"] in ("succeeded", "failed") for r in runs):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"runs did not finish: {runs}")

        runs = sorted(runs, key=lambda r: r["created_at"])
        assert [r["state"] for r in runs] == ["succeeded", "succeeded"], runs
        assert "running" in seen_states
        first, second = (api.get(f"/runs/{r['id']}").json() for r in runs)
        assert first["events"][0]["source"] == "manual"
        assert second["events"][0]["source"] == "storage"
        assert second["params"]["data_uri"] == "s3://datasets/songs/new batch.csv"
        assert [s["state"] for s in first["states"]] == [
            "submitting",
            "pending",
            "running",
            "succeeded",
        ]
        assert first["model_version"] == 1 and second["model_version"] == 2
        assert Path(first["log_path"]).read_text()

        lineage = api.get("/models/songs/2").json()
        assert lineage["run"]["id"] == second["id"]
        assert lineage["run"]["decision"]["event_ids"] == [e["id"] for e in second["events"]]
        metadata = lineage["model"]["metadata"]
        assert metadata["lineage"]["decision_id"] == second["decision_id"]
        assert metadata["lineage"]["git_commit"] == second["version"]
        assert metadata["data"]["uri"] == "s3://datasets/songs/new batch.csv"
        assert json.loads((tmp_path / "models" / "songs" / "2" / "metadata.json").read_text())
