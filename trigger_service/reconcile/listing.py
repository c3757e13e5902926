"""Listing a bucket prefix with the `minio` client, one entry at a time.

    make_client(endpoint, access_key, secret_key, secure) -> Minio
    is_versioned(client, bucket) -> bool                      raises ListingError
    list_entries(client, bucket, prefix, versioned, start_after) -> Iterator[Listed]
                                                              raises ListingError

A versioned bucket is listed with its versions (ListObjectVersions), so two versions of one key
uploaded while notifications were lost are two entries, each with the version id its
notification carries. Delete markers are not entries; a version whose key's latest version is a
delete marker is listed as not `live` (a removed object is never new data). Entries come in key
order as the server pages them (1,000 a page); nothing holds more than one page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.error import MinioException
from urllib3.exceptions import HTTPError


class ListingError(Exception):
    """The listing failed (server down, access denied, no such bucket...): retry later."""


@dataclass(frozen=True)
class Listed:
    key: str
    size: int | None
    etag: str | None
    version_id: str | None  # None in a bucket without versions
    live: bool  # False: a version under a delete marker


def make_client(
    endpoint: str,
    access_key: str | None,
    secret_key: str | None,
    secure: bool,
    timeout_seconds: float = 30.0,
) -> Minio:
    """A client that fails fast: the reconcile loop has its own backoff, so urllib3 retries a
    refused connection twice, not minio's default five times per page, and never a read that
    timed out (a server that accepts and never answers held a pass 3 x `timeout_seconds`)."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(5.0, timeout_seconds), read=timeout_seconds),
        retries=urllib3.Retry(
            total=2, read=0, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
        maxsize=2,
    )
    return Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        http_client=http,
    )


def is_versioned(client: Minio, bucket: str) -> bool:
    """Enabled or Suspended: objects may carry version ids, so list versions."""
    try:
        status = client.get_bucket_versioning(bucket).status
    except (MinioException, HTTPError, OSError, ValueError) as exc:
        raise ListingError(f"bucket {bucket}: versioning status: {_describe(exc)}") from exc
    return status in ("Enabled", "Suspended")


def list_entries(
    client: Minio, bucket: str, prefix: str, versioned: bool, start_after: str | None = None
) -> Iterator[Listed]:
    """Every object (every version, when `versioned`) under `prefix`, after key `start_after`."""
    objects = client.list_objects(
        bucket,
        prefix=prefix or None,
        recursive=True,
        start_after=start_after or None,
        include_version=versioned,
    )
    live_key: str | None = None  # the key whose newest version was live
    last_key: str | None = None
    try:
        for obj in objects:
            key = obj.object_name
            if key is None or obj.is_delete_marker or obj.is_dir:
                continue
            if not versioned:
                yield Listed(key, obj.size, obj.etag, None, True)
                continue
            # Versions of a key come newest first; minio-py moves a page's delete markers to
            # the page's end, so a key is live when its first listed version is the latest one
            # (a key may continue on the next page: same key, still live).
            if key != last_key:
                live_key = key if (obj.is_latest or "").lower() == "true" else None
                last_key = key
            yield Listed(key, obj.size, obj.etag, obj.version_id, key == live_key)
    except (MinioException, HTTPError, OSError, ValueError) as exc:
        raise ListingError(f"bucket {bucket} prefix {prefix!r}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}: {code}" if code else f"{type(exc).__name__}: {exc}"
