"""Turn features into numbers and split train/test deterministically (seeded, stratified).

The splits travel as one directory artifact: train.parquet, test.parquet and schema.json (feature
order and class labels in the model's output order), which every later step reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.steps.errors import DataValidationError
from pipeline.steps.schema import FEATURES, LABEL
from pipeline.steps.validate import missing_columns

_TRUE_TEXT = {"true", "1"}  # what validate accepts as true


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # float32, shape (rows, len(FEATURES))
    labels: np.ndarray  # int64 class indices into `classes`
    classes: list[str]
    feature_names: list[str]


def to_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Features as float32 (booleans as 0/1), label as str; rows with a missing value dropped.

    Dropping (not imputing) keeps the served model honest: it takes raw features and has no
    imputation inside it. Validation bounds how many rows this can remove.
    """
    out = pd.DataFrame(index=frame.index)
    for column in FEATURES:
        values = frame[column]
        if column == "is_explicit" and not pd.api.types.is_numeric_dtype(values):
            values = values.map(lambda v: np.nan if pd.isna(v) else str(v).lower() in _TRUE_TEXT)
        out[column] = pd.to_numeric(values, errors="coerce").astype("float32")
    out[LABEL] = frame[LABEL].astype("string")
    return out.dropna().reset_index(drop=True)


def split(frame: pd.DataFrame, test_fraction: float, seed: int) -> tuple[pd.DataFrame, ...]:
    """Stratified split: each class contributes `test_fraction` of its rows to the test set."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test_rows: list[int] = []
    for label in sorted(frame[LABEL].unique()):
        rows = np.flatnonzero((frame[LABEL] == label).to_numpy())
        take = round(len(rows) * test_fraction) if len(rows) > 1 else 0
        test_rows.extend(rng.permutation(rows)[:take].tolist())
    is_test = np.zeros(len(frame), dtype=bool)
    is_test[test_rows] = True
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def preprocess(data: pd.DataFrame, out_dir: Path, test_fraction: float, seed: int) -> dict:
    """Write the splits directory and return its schema."""
    # kfp.local may run this before validate (they are parallel); say what validate would say.
    missing = missing_columns(data)
    if missing:
        raise DataValidationError(
            f"data validation failed: missing column(s): {', '.join(missing)}"
        )
    numeric = to_numeric(data)
    train, test = split(numeric, test_fraction, seed)
    schema = {
        "features": list(FEATURES),
        "label": LABEL,
        "classes": sorted(str(c) for c in numeric[LABEL].unique()),
        "rows": {"train": len(train), "test": len(test), "dropped": len(data) - len(numeric)},
        "seed": seed,
        "test_fraction": test_fraction,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    train.to_parquet(out_dir / "train.parquet", index=False)
    test.to_parquet(out_dir / "test.parquet", index=False)
    (out_dir / "schema.json").write_text(json.dumps(schema, indent=2, sort_keys=True))
    return schema


def load_split(splits_dir: Path, name: str) -> Split:
    """Load `train` or `test` from a splits directory as model-ready arrays."""
    schema = json.loads((splits_dir / "schema.json").read_text())
    frame = pd.read_parquet(splits_dir / f"{name}.parquet")
    classes: list[str] = schema["classes"]
    index = {label: i for i, label in enumerate(classes)}
    return Split(
        features=frame[schema["features"]].to_numpy(dtype=np.float32),
        labels=frame[LABEL].map(index).to_numpy(dtype=np.int64),
        classes=classes,
        feature_names=list(schema["features"]),
    )
