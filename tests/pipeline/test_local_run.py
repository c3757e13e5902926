"""End to end with kfp.local through the CLI the trigger service calls: publish, keep the
champion, stop at the validation and evaluation gates. One model directory is shared by the
module's runs, in order, to keep TensorFlow work (and the file's run time) small."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.steps import demo_data, preprocess
from pipeline.steps.tables import read_table
from pipeline.steps.verify import onnx_predict

pytestmark = pytest.mark.slow
EPOCHS = "4"


@dataclass
class Run:
    code: int
    output: str
    result: dict[str, Any]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("local-run")
    demo_data.write(root / "songs.csv", rows=1000, seed=11)
    return root


def _run(
    workspace: Path,
    name: str,
    *extra: str,
    data: str = "songs.csv",
    env: dict[str, str] | None = None,
) -> Run:
    """Run the CLI; `data` is a file in the workspace or a URI."""
    result_file = workspace / f"{name}.json"
    command = [
        sys.executable, "-m", "pipeline", "run", "--local",
        "--data-uri", data if "://" in data else str(workspace / data),
        "--models-root", str(workspace / "models"),
        "--model-name", "songs",
        "--epochs", EPOCHS,
        "--result-file", str(result_file),
        "--param", "git_commit=abc123",
        "--param", "event_ids=ev-1,ev-2",
        *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )
    return Run(done.returncode, done.stdout + done.stderr, json.loads(result_file.read_text()))


def _versions(workspace: Path) -> list[str]:
    return sorted(p.name for p in (workspace / "models" / "songs").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def first(workspace: Path) -> Run:
    return _run(workspace, "first")


@pytest.fixture(scope="module")
def compiled(workspace: Path) -> Path:
    path = workspace / "pipeline.yaml"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", "--output", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def test_first_run_publishes_version_1(first: Run, workspace: Path) -> None:
    assert first.code == 0, first.output[-3000:]
    assert first.result["status"] == "succeeded"
    assert first.result["published"] is True and first.result["model_version"] == 1
    assert first.result["model_path"] == str(workspace / "models/songs/1/model.onnx")
    assert first.result["metrics"]["accuracy"] > 0.5
    for step in ("fetch", "validate", "preprocess", "train", "evaluate", "convert", "verify"):
        assert f"[pipeline] {step}: finished in" in first.output  # a person sees each step


def test_published_onnx_takes_raw_features_and_matches_metadata_accuracy(
    first: Run, workspace: Path, tmp_path: Path
) -> None:
    folder = workspace / "models/songs/1"
    meta = json.loads((folder / "metadata.json").read_text())
    # Rebuild the run's test split from the raw file: same seed and fraction, same rows.
    preprocess.preprocess(read_table(workspace / "songs.csv"), tmp_path, 0.2, 42)
    test = preprocess.load_split(tmp_path, "test")

    probabilities = onnx_predict(folder / "model.onnx", test.features)

    assert probabilities.shape == (len(test.labels), len(meta["classes"]))
    accuracy = float(np.mean(probabilities.argmax(axis=1) == test.labels))
    assert accuracy == pytest.approx(meta["metrics"]["accuracy"], abs=1e-9)
    assert meta["features"] == test.feature_names and meta["classes"] == test.classes
    assert meta["lineage"]["git_commit"] == "abc123"
    assert meta["lineage"]["event_ids"] == ["ev-1", "ev-2"]
    assert meta["lineage"]["run_id"]  # what kfp.local substitutes for the job id
    assert len(meta["data"]["sha256"]) == 64


def test_compiled_package_run_publishes_when_champion_lets_it(
    first: Run, workspace: Path, compiled: Path
) -> None:
    run = _run(workspace, "second", "--package", str(compiled), "--param", "champion_tolerance=1.0")

    assert run.code == 0, run.output[-3000:]
    assert run.result["published"] is True and run.result["model_version"] == 2
    assert _versions(workspace) == ["1", "2"]


def test_worse_challenger_from_s3_parquet_finishes_without_publishing_and_says_why(
    first: Run, workspace: Path, compiled: Path, s3_endpoint: str
) -> None:
    from minio import Minio

    # The same rows as Parquet in a bucket: the fetch step reads the S3 settings from the
    # environment, as the Secret provides them on a cluster.
    body = io.BytesIO()
    read_table(workspace / "songs.csv").to_parquet(body, index=False)
    client = Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False)
    client.make_bucket("songs")
    client.put_object("songs", "in/songs.parquet", io.BytesIO(body.getvalue()), body.tell())
    env = {
        "S3_ENDPOINT": f"http://{s3_endpoint}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    before = _versions(workspace)

    # A negative tolerance demands the challenger beat the champion by more than is possible.
    run = _run(
        workspace,
        "third",
        "--package",
        str(compiled),
        "--param",
        "champion_tolerance=-1",
        data="s3://songs/in/songs.parquet",
        env=env,
    )

    assert run.code == 0, run.output[-3000:]
    assert run.result["status"] == "succeeded" and run.result["published"] is False
    assert run.result["model_version"] is None and run.result["metrics"]["published"] == 0
    assert run.result["reason"].startswith("not published: challenger accuracy")
    assert _versions(workspace) == before


def test_bad_data_stops_the_run_at_validation(first: Run, workspace: Path) -> None:
    demo_data.generate(5, seed=1).to_csv(workspace / "five.csv", index=False)
    before = _versions(workspace)

    run = _run(workspace, "bad", data="five.csv")

    assert run.code == 1
    assert run.result["status"] == "failed" and run.result["failed_step"] == "validate"
    assert "only 5 rows, need at least 50" in run.result["error"]
    assert run.result["published"] is False
    assert _versions(workspace) == before


def test_unreachable_accuracy_threshold_stops_the_run_at_evaluation(
    first: Run, workspace: Path, compiled: Path
) -> None:
    before = _versions(workspace)

    run = _run(workspace, "gate", "--package", str(compiled), "--param", "accuracy_threshold=0.999")

    assert run.code == 1
    assert run.result["failed_step"] == "evaluate"
    assert "below the threshold 0.9990" in run.result["error"]
    assert _versions(workspace) == before


def test_missing_data_file_fails_at_fetch_after_retries(workspace: Path) -> None:
    run = _run(workspace, "missing", data="nowhere.csv")

    assert run.code == 1
    assert run.result["failed_step"] == "fetch"
    assert f"data file not found: {workspace / 'nowhere.csv'}" in run.result["error"]
    assert run.output.count("[pipeline] fetch: started") == 3  # set_retry: 1 + 2 retries
