"""Fetch (local), validate and preprocess as plain functions, and the demo data generator."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.steps import demo_data, fetch, preprocess, validate
from pipeline.steps.errors import DataValidationError
from pipeline.steps.schema import FEATURES, LABEL
from pipeline.steps.tables import read_table


def test_fetch_local_path_and_file_uri_copy_and_hash(demo_csv: Path, tmp_path: Path) -> None:
    expected = hashlib.sha256(demo_csv.read_bytes()).hexdigest()
    for uri in (str(demo_csv), demo_csv.as_uri()):
        result = fetch.fetch(uri, tmp_path / "data", env={})
        assert result.sha256 == expected
        assert result.path.read_bytes() == demo_csv.read_bytes()


def test_fetch_rejects_missing_file_and_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        fetch.fetch(str(tmp_path / "nope.csv"), tmp_path / "data", env={})
    with pytest.raises(ValueError, match="unsupported data URI scheme 'gs'"):
        fetch.fetch("gs://bucket/key.csv", tmp_path / "data", env={})
    with pytest.raises(ValueError, match="S3_ENDPOINT is not set"):
        fetch.fetch("s3://bucket/key.csv", tmp_path / "data", env={})


@pytest.mark.parametrize(
    ("env", "endpoint", "secure"),
    [
        ({"S3_ENDPOINT": "minio:9000"}, "minio:9000", False),
        ({"S3_ENDPOINT": "https://s3.example.org"}, "s3.example.org", True),
        ({"S3_ENDPOINT": "https://s3.example.org", "S3_SECURE": "false"}, "s3.example.org", False),
        ({"S3_ENDPOINT": "minio:9000", "S3_SECURE": "true"}, "minio:9000", True),
    ],
)
def test_s3_config_from_env(env: dict[str, str], endpoint: str, secure: bool) -> None:
    config = fetch.S3Config.from_env(env)
    assert (config.endpoint, config.secure) == (endpoint, secure)


def test_demo_data_is_deterministic_and_shaped_like_song_data(tmp_path: Path) -> None:
    first = demo_data.generate(300, seed=5)
    assert first.equals(demo_data.generate(300, seed=5))
    assert not first.equals(demo_data.generate(300, seed=6))
    assert list(first.columns) == [*FEATURES, LABEL]
    assert set(first[LABEL]) == set(demo_data.COUNTRIES)
    assert validate.validate(first).problems == []
    parquet = demo_data.write(tmp_path / "songs.parquet", rows=50)
    assert read_table(parquet).equals(demo_data.generate(50))


def test_good_data_passes_validation(demo_csv: Path, tmp_path: Path) -> None:
    validate.validate_file(demo_csv, tmp_path / "report.json")
    assert '"ok": true' in (tmp_path / "report.json").read_text()


@pytest.mark.parametrize(
    "is_explicit",
    [
        lambda f: f.is_explicit.astype(int),
        lambda f: f.is_explicit.astype(str).str.upper(),
        lambda f: f.is_explicit.astype(float).where(f.index != 3),  # 0.0/1.0 with a gap
    ],
    ids=["ints", "text", "floats-with-gap"],
)
def test_boolean_column_may_be_written_in_several_ways(
    is_explicit: Callable[[pd.DataFrame], pd.Series], tmp_path: Path
) -> None:
    frame = demo_data.generate(200, seed=1)
    frame.assign(is_explicit=is_explicit(frame)).to_csv(tmp_path / "d.csv", index=False)
    assert validate.validate(read_table(tmp_path / "d.csv")).problems == []


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda f: f.drop(columns=[LABEL]), "missing column(s): country"),
        (
            lambda f: f.assign(energy=np.where(np.arange(len(f)) % 5, np.nan, f.energy)),
            "column 'energy' is 80% missing",
        ),
        (lambda f: f.head(5), "only 5 rows, need at least 50"),
        (lambda f: f.assign(rank=1), "label leakage: column(s) rank"),
        (lambda f: f.assign(is_explicit=2), "column 'is_explicit' must be boolean"),
        (lambda f: f.assign(tempo="fast"), "column 'tempo' is not numeric (e.g. 'fast')"),
        (lambda f: f.assign(danceability=f.danceability * 100), "column 'danceability' has"),
        (lambda f: f.assign(country="US"), "label 'country' has 1 class(es)"),
        (
            lambda f: pd.concat([f, f.head(2).assign(country="FR")]),
            "label class(es) with fewer than 5 rows: FR (2)",
        ),
    ],
    ids=[
        "no-label",
        "mostly-nan",
        "five-rows",
        "leakage",
        "not-bool",
        "text",
        "range",
        "one-class",
        "rare",
    ],
)
def test_bad_data_fails_validation_naming_the_problem(
    spoil: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
    tmp_path: Path,
) -> None:
    data = tmp_path / "bad.csv"
    spoil(demo_data.generate(200, seed=1)).to_csv(data, index=False)

    with pytest.raises(DataValidationError) as failure:
        validate.validate_file(data, tmp_path / "report.json")

    assert message in str(failure.value)
    assert message in (tmp_path / "report.json").read_text()


def test_preprocess_split_is_deterministic_stratified_and_numeric(tmp_path: Path) -> None:
    frame = demo_data.generate(500, seed=2).assign(is_explicit=lambda f: f.is_explicit.astype(str))
    first = preprocess.preprocess(frame, tmp_path / "a", test_fraction=0.2, seed=9)
    preprocess.preprocess(frame, tmp_path / "b", test_fraction=0.2, seed=9)
    preprocess.preprocess(frame, tmp_path / "c", test_fraction=0.2, seed=10)

    def test_part(name: str) -> pd.DataFrame:
        return pd.read_parquet(tmp_path / name / "test.parquet")

    assert test_part("a").equals(test_part("b"))
    assert not test_part("a").equals(test_part("c"))
    assert first["rows"] == {"train": 400, "test": 100, "dropped": 0}
    test = preprocess.load_split(tmp_path / "a", "test")
    assert test.features.dtype == np.float32 and test.features.shape == (100, 13)
    assert set(np.unique(test.features[:, 0])) <= {0.0, 1.0}  # is_explicit from "True"/"False"
    per_class_test = np.bincount(test.labels) / np.bincount(
        preprocess.load_split(tmp_path / "a", "train").labels, minlength=4
    )
    assert np.allclose(per_class_test, 0.25, atol=0.03)  # 20/80 in every class


def test_preprocess_drops_rows_with_missing_values(tmp_path: Path) -> None:
    frame = demo_data.generate(100, seed=2)
    frame.loc[[3, 7], "tempo"] = np.nan
    schema = preprocess.preprocess(frame, tmp_path, test_fraction=0.2, seed=1)
    assert schema["rows"]["dropped"] == 2
    assert schema["rows"]["train"] + schema["rows"]["test"] == 98
