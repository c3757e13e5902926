"""Fetch the training data from `s3://bucket/key` (MinIO client) or a local path / file:// URI.

S3 settings come from environment variables that a Kubernetes Secret provides on a cluster:
S3_ENDPOINT (host:port or URL), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_SECURE, S3_CA_FILE.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

_CHUNK = 1 << 20


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Config:
        endpoint = env.get("S3_ENDPOINT", "")
        if not endpoint:
            raise ValueError("S3_ENDPOINT is not set; it is needed to fetch s3:// data")
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        # A URL's scheme decides TLS unless S3_SECURE says otherwise explicitly.
        secure_default = "true" if parsed.scheme == "https" else "false"
        secure = env.get("S3_SECURE", secure_default).strip().lower() in {"1", "true", "yes"}
        return cls(
            endpoint=parsed.netloc,
            access_key=env.get("AWS_ACCESS_KEY_ID", ""),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
            secure=secure,
            ca_file=env.get("S3_CA_FILE") or None,
        )


@dataclass(frozen=True)
class FetchResult:
    path: Path
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(uri: str, dest: Path, env: Mapping[str, str]) -> FetchResult:
    """Copy the data at `uri` to `dest` and return its sha256."""
    parsed = urlparse(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if parsed.scheme == "s3":
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key:
            raise ValueError(f"s3 URI needs a bucket and a key: {uri!r}")
        _download_s3(S3Config.from_env(env), parsed.netloc, key, dest)
    elif parsed.scheme in {"", "file"}:
        source = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
        if not source.is_file():
            raise FileNotFoundError(f"data file not found: {source}")
        shutil.copyfile(source, dest)
    else:
        raise ValueError(f"unsupported data URI scheme {parsed.scheme!r} in {uri!r}")
    return FetchResult(path=dest, sha256=sha256_of(dest), size=dest.stat().st_size)


def _download_s3(config: S3Config, bucket: str, key: str, dest: Path) -> None:
    import urllib3
    from minio import Minio

    http_client = None
    if config.secure and config.ca_file:
        http_client = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED", ca_certs=config.ca_file, retries=urllib3.Retry(3)
        )
    client = Minio(
        config.endpoint,
        access_key=config.access_key,
        secret_key=config.secret_key,
        secure=config.secure,
        http_client=http_client,
    )
    client.fget_object(bucket, key, str(dest))
