"""The compiled pipeline YAML: DAG shape, gates, Kubernetes settings and byte-stable output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import cli, config

CONTRACT = {
    "data_uri": None,
    "models_root": "/models",
    "model_name": "songs",
    "pvc_name": "models",
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 0.003,
    "seed": 42,
    "test_fraction": 0.2,
    "accuracy_threshold": 0.5,
    "parity_tolerance": 1e-4,
    "champion_tolerance": 0.01,
    "keep_versions": 5,
    "git_commit": "",
    "trigger_reason": "",
    "event_ids": "",
    "decision_id": "",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    assert cli.main(["compile", "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def documents(compiled: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    spec, platform = yaml.safe_load_all(compiled.read_text())
    return spec, platform


def _tasks(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["root"]["dag"]["tasks"]


def test_dag_runs_validate_with_preprocess_and_evaluate_with_convert(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    tasks = _tasks(documents[0])
    depends = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}

    assert depends["fetch-data"] == set()
    assert depends["validate-data"] == {"fetch-data"}
    assert depends["preprocess-data"] == {"fetch-data"}
    assert depends["train-model"] == {"preprocess-data", "validate-data"}
    assert depends["evaluate-model"] == {"preprocess-data", "train-model"}
    assert depends["convert-to-onnx"] == {"train-model"}
    assert "evaluate-model" not in depends["convert-to-onnx"]
    assert {"convert-to-onnx", "train-model"} <= depends["verify-onnx"]
    assert {"validate-data", "evaluate-model", "verify-onnx", "convert-to-onnx"} <= depends[
        "publish-model"
    ]


def test_parameters_are_the_trigger_service_contract(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    parameters = documents[0]["root"]["inputDefinitions"]["parameters"]

    assert set(parameters) == set(CONTRACT)
    for name, default in CONTRACT.items():
        if default is None:
            assert "defaultValue" not in parameters[name]
        else:
            assert parameters[name]["defaultValue"] == default, name


def test_tasks_are_uncached_fetch_retries_and_train_is_sized(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    spec = documents[0]
    tasks = _tasks(spec)
    assert all(task["cachingOptions"] == {} for task in tasks.values())  # enableCache false
    assert tasks["fetch-data"]["retryPolicy"]["maxRetryCount"] == config.FETCH_RETRIES
    resources = spec["deploymentSpec"]["executors"]["exec-train-model"]["container"]["resources"]
    assert resources["resourceCpuLimit"] == "2" and resources["resourceMemoryLimit"] == "4G"
    assert resources["resourceCpuRequest"] == "1" and resources["resourceMemoryRequest"] == "2G"
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {config.DEFAULT_IMAGE}


def test_platform_spec_mounts_the_models_pvc_and_s3_secret(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    (mount,) = executors["exec-publish-model"]["pvcMount"]
    assert mount["mountPath"] == config.MODELS_MOUNT_PATH
    assert mount["pvcNameParameter"] == {"componentInputParameter": "pvc_name"}
    secret_env = executors["exec-fetch-data"]["secretAsEnv"][0]
    assert secret_env["optional"] is True
    assert {k["envVar"] for k in secret_env["keyToEnv"]} == set(config.S3_SECRET_KEYS)


def test_compile_is_byte_identical_and_image_is_overridable(compiled: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.yaml"
    other = tmp_path / "other.yaml"
    command = [sys.executable, "-m", "pipeline", "compile"]
    subprocess.run([*command, "--output", str(again)], check=True, capture_output=True)
    subprocess.run(
        [*command, "--output", str(other), "--image", "registry.local/pipeline:abc"],
        check=True,
        capture_output=True,
    )

    assert again.read_bytes() == compiled.read_bytes()
    spec = next(yaml.safe_load_all(other.read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.local/pipeline:abc"}
