"""The s3:// fetch against a real S3-protocol server (moto_server) on loopback."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from pipeline.steps import fetch


@pytest.mark.slow
def test_fetch_s3_uri_through_minio_client(
    s3_endpoint: str, demo_csv: Path, tmp_path: Path
) -> None:
    from minio import Minio
    from minio.error import S3Error

    env = {
        "S3_ENDPOINT": f"http://{s3_endpoint}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "S3_SECURE": "false",
    }
    client = Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False)
    client.make_bucket("songs")
    body = demo_csv.read_bytes()
    client.put_object("songs", "drops/2026/songs.csv", io.BytesIO(body), len(body))

    result = fetch.fetch("s3://songs/drops/2026/songs.csv", tmp_path / "data", env)

    assert result.path.read_bytes() == body
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert result.size == len(body)
    with pytest.raises(S3Error, match="NoSuchKey"):
        fetch.fetch("s3://songs/missing.csv", tmp_path / "missing", env)
