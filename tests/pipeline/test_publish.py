"""Publish: growing versions, atomic install, champion/challenger and retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.steps import publish
from pipeline.steps.preprocess import load_split
from tests.pipeline.tiny_onnx import constant_onnx

LINEAGE = publish.Lineage(
    data_uri="s3://songs/2026/11/top.csv",
    data_sha256="ab" * 32,
    git_commit="0123abc",
    trigger_reason="data: s3://songs/2026/11/top.csv",
    event_ids=publish.parse_event_ids(" ev-1, ev-2 ,,"),
    decision_id="dec-9",
    run_id="run-42",
)
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _publish(
    tmp_path: Path, splits_dir: Path, accuracy: float, **policy: Any
) -> publish.PublishResult:
    onnx_path = constant_onnx(tmp_path / "challenger" / "model.onnx", predicted_class=0)
    return publish.publish(
        onnx_path=onnx_path,
        splits_dir=splits_dir,
        models_root=tmp_path / "models",
        model_name="songs",
        metrics={"accuracy": accuracy, "macro_f1": accuracy / 2},
        lineage=LINEAGE,
        policy=publish.Policy(**policy),
        now=NOW,
    )


def _visible(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "models" / "songs").iterdir() if p.is_dir())


def test_first_publish_writes_version_1_with_metadata(tmp_path: Path, splits_dir: Path) -> None:
    result = _publish(tmp_path, splits_dir, accuracy=0.8)

    assert result.published and result.version == 1
    folder = tmp_path / "models" / "songs" / "1"
    assert result.path == str(folder / "model.onnx")
    meta = json.loads((folder / "metadata.json").read_text())
    test = load_split(splits_dir, "test")
    assert meta["features"] == test.feature_names and len(meta["features"]) == 13
    assert meta["classes"] == test.classes
    assert meta["metrics"] == {"accuracy": 0.8, "macro_f1": 0.4, "test_rows": len(test.labels)}
    assert meta["data"] == {"uri": LINEAGE.data_uri, "sha256": LINEAGE.data_sha256}
    assert meta["lineage"] == {
        "git_commit": "0123abc",
        "trigger_reason": LINEAGE.trigger_reason,
        "event_ids": ["ev-1", "ev-2"],
        "decision_id": "dec-9",
        "run_id": "run-42",
    }
    assert meta["created"] == "2026-11-25T08:00:00+00:00"
    assert {"onnxruntime", "numpy", "python"} <= meta["libraries"].keys()
    assert meta["input"]["name"] == "features" and meta["output"]["name"] == "probabilities"


def test_challenger_worse_than_champion_is_not_published(tmp_path: Path, splits_dir: Path) -> None:
    assert _publish(tmp_path, splits_dir, accuracy=0.8).version == 1
    test = load_split(splits_dir, "test")
    champion_accuracy = float(np.mean(test.labels == 0))  # the model always answers class 0

    result = _publish(tmp_path, splits_dir, accuracy=champion_accuracy - 0.05)

    assert not result.published and result.version is None
    assert result.champion_accuracy == pytest.approx(champion_accuracy)
    assert result.reason == (
        f"not published: challenger accuracy {champion_accuracy - 0.05:.4f} < champion "
        f"v1 {champion_accuracy:.4f} - 0.01"
    )
    assert _visible(tmp_path) == ["1"]


def test_challenger_within_tolerance_is_published(tmp_path: Path, splits_dir: Path) -> None:
    _publish(tmp_path, splits_dir, accuracy=0.8)
    # The champion (always class 0) scores ~0.2; a slightly worse challenger is within 0.5.
    result = _publish(tmp_path, splits_dir, accuracy=0.1, champion_tolerance=0.5)

    assert result.published and result.version == 2
    assert result.champion_version == 1
    meta = json.loads((tmp_path / "models/songs/2/metadata.json").read_text())
    assert meta["champion"]["version"] == 1


def test_interrupted_copy_leaves_no_visible_version_and_numbers_still_grow(
    tmp_path: Path, splits_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish(tmp_path, splits_dir, accuracy=0.8)

    def crash(source: Path, dest: Path) -> None:
        dest.write_bytes(source.read_bytes()[:10])  # half a model, then the pod dies
        raise OSError("No space left on device")

    monkeypatch.setattr(publish, "copy_file", crash)
    with pytest.raises(OSError, match="No space left"):
        _publish(tmp_path, splits_dir, accuracy=0.9)
    model_dir = tmp_path / "models" / "songs"
    assert _visible(tmp_path) == ["1"]
    assert all(not p.name[0].isdigit() for p in model_dir.iterdir() if p.name != "1")

    monkeypatch.undo()
    result = _publish(tmp_path, splits_dir, accuracy=0.9)
    assert result.version == 3  # 2 was reserved by the interrupted publish: never reused
    assert _visible(tmp_path) == ["1", "3"]


def test_staging_left_by_a_killed_publish_is_swept_by_the_next(
    tmp_path: Path, splits_dir: Path
) -> None:
    _publish(tmp_path, splits_dir, accuracy=0.8)
    leftover = tmp_path / "models/songs/.staging-2-deadbeef"
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")

    assert _publish(tmp_path, splits_dir, accuracy=0.8).version == 2
    assert not leftover.exists()


def test_deleted_version_number_is_not_reused(tmp_path: Path, splits_dir: Path) -> None:
    _publish(tmp_path, splits_dir, accuracy=0.8)
    second = _publish(tmp_path, splits_dir, accuracy=0.8)
    assert second.version == 2
    for file in (tmp_path / "models/songs/2").iterdir():
        file.unlink()
    (tmp_path / "models/songs/2").rmdir()

    assert _publish(tmp_path, splits_dir, accuracy=0.8).version == 3


def test_retention_keeps_newest_versions(tmp_path: Path, splits_dir: Path) -> None:
    results = [_publish(tmp_path, splits_dir, accuracy=0.8, keep_versions=2) for _ in range(4)]

    assert [r.version for r in results] == [1, 2, 3, 4]
    assert results[-1].removed_versions == [2]
    assert _visible(tmp_path) == ["3", "4"]


def test_keep_versions_below_one_still_keeps_the_served_version(
    tmp_path: Path, splits_dir: Path
) -> None:
    _publish(tmp_path, splits_dir, accuracy=0.8, keep_versions=0)
    _publish(tmp_path, splits_dir, accuracy=0.8, keep_versions=0)

    assert _visible(tmp_path) == ["2"]


def test_champion_for_other_classes_is_not_compared(tmp_path: Path, splits_dir: Path) -> None:
    _publish(tmp_path, splits_dir, accuracy=0.9)
    meta_path = tmp_path / "models/songs/1/metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "classes": ["AR", "FR"]}))

    result = _publish(tmp_path, splits_dir, accuracy=0.01)

    assert result.published and result.version == 2
    assert result.champion_version == 1 and result.champion_accuracy is None
    assert result.reason == (
        "published version 2 (champion v1 not comparable: other features or classes)"
    )


@pytest.mark.parametrize("name", ["../../escaped-model", "..", ".", "a/b", "", "x\x00y", "/abs"])
def test_a_model_name_that_leaves_the_models_root_publishes_and_prunes_nothing(
    tmp_path: Path, splits_dir: Path, name: str
) -> None:
    outside = tmp_path / "escaped-model" / "1"
    outside.mkdir(parents=True)  # a numbered folder pruning must never reach
    onnx_path = constant_onnx(tmp_path / "challenger" / "model.onnx", predicted_class=0)
    with pytest.raises(publish.PublishError, match="not one path segment"):
        publish.publish(
            onnx_path=onnx_path,
            splits_dir=splits_dir,
            models_root=tmp_path / "models" / "root",
            model_name=name,
            metrics={"accuracy": 0.9, "macro_f1": 0.5},
            lineage=LINEAGE,
            policy=publish.Policy(keep_versions=1),
            now=NOW,
        )
    assert outside.is_dir()
    assert sorted(p.name for p in (tmp_path / "escaped-model").iterdir()) == ["1"]


def test_a_model_folder_that_is_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "songs").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(publish.PublishError, match="not directly under"):
        publish.model_folder(root, "songs")
    assert publish.model_folder(root, "other") == root / "other"
