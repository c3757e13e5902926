"""The command line's argument handling and the result of a run that cannot start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.definition import training_pipeline
from pipeline.local import typed_arguments
from pipeline.steps import demo_data


def test_params_are_typed_as_the_pipeline_declares_them() -> None:
    pairs = cli.split_pairs(
        ["epochs=3", "learning_rate=0.01", "event_ids=a,b", "trigger_reason=x=y", "git_commit="]
    )

    assert typed_arguments(training_pipeline, pairs) == {
        "epochs": 3,
        "learning_rate": 0.01,
        "event_ids": "a,b",
        "trigger_reason": "x=y",
        "git_commit": "",
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bogus": "1"}, "unknown pipeline parameter(s) bogus; the pipeline takes accuracy_"),
        ({"epochs": "many"}, "parameter epochs: 'many' is not a Integer"),
    ],
)
def test_params_the_pipeline_does_not_take_are_refused(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        typed_arguments(training_pipeline, params)
    assert message in str(refused.value)


def test_malformed_param_fails_the_run_with_a_result(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    code = cli.main(
        [
            "run", "--local", "--data-uri", "x.csv", "--models-root", str(tmp_path / "models"),
            "--model-name", "songs", "--param", "epochs", "--result-file", str(result_file),
        ]
    )  # fmt: skip

    assert code == 1
    assert json.loads(result_file.read_text())["error"] == "--param 'epochs': expected KEY=VALUE"


def test_demo_data_command_writes_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "songs.csv"
    assert cli.main(["demo-data", "--output", str(out), "--rows", "30", "--seed", "3"]) == 0
    assert out.read_text() == demo_data.generate(30, seed=3).to_csv(index=False)


def test_run_that_cannot_start_exits_1_with_a_failed_result(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    code = cli.main(
        [
            "run", "--local", "--data-uri", "x.csv", "--models-root", str(tmp_path / "models"),
            "--model-name", "songs", "--package", str(tmp_path / "missing.yaml"),
            "--result-file", str(result_file),
        ]
    )  # fmt: skip

    result = json.loads(result_file.read_text())
    assert code == 1
    assert result["status"] == "failed" and result["published"] is False
    assert "missing.yaml" in result["error"]
    assert not (tmp_path / "models").exists()
