"""Shared fixtures: demo data, its splits, and an S3-protocol server (moto) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.steps import demo_data, preprocess
from tests.support.s3 import moto_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_data.write(tmp_path_factory.mktemp("data") / "songs.csv", rows=1000, seed=7)


@pytest.fixture(scope="session")
def splits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("splits")
    preprocess.preprocess(demo_data.generate(400, seed=3), out, test_fraction=0.25, seed=1)
    return out
