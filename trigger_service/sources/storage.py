"""Bucket notifications: MinIO's webhook format and AWS S3's event format (bare or inside SNS).

MinIO posts one record per request and prefixes event names with "s3:"; S3 posts several and
does not. Both URL-encode object keys the query way ("+" for a space). Only records that mean
new or removed data become Events: tagging, retention, ACL, access... changes are dropped.

A new object version has one identity however it reaches us: bucket, key and version id (or the
ETag where the bucket keeps no versions), never the notification's sequencer. So the reconcile
listing (`listed_object_event`) and a late notification of the same upload are one Event, and
the inbox stores it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import DataSubject, Event, EventKind, make_event_id
from trigger_service.sources._auth import check_authorization
from trigger_service.sources._json import load_object, opt, req
from trigger_service.validation import text

# Anything else (PutTagging, PutRetention, PutLegalHold, ObjectAccessed:*, ObjectRestore:*,
# Replication:*, ...) is not new data. `mc event add --event put` sends those too.
KEPT_EVENTS = frozenset(
    {
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
        "s3:ObjectRemoved:DeleteAllVersions",  # MinIO: `mc rm --versions`, force delete
    }
)
WHAT = "storage"
LISTED_EVENT_NAME = "s3:ObjectCreated:Put"  # a listing cannot tell Put, Copy or multipart apart


def _records(payload: Mapping[str, Any]) -> list[Any]:
    """The S3 records of a MinIO, S3 or SNS-wrapped S3 notification."""
    sns_type = opt(payload, "Type", str, WHAT)
    if sns_type in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        # Fetching SubscribeURL from here would let anyone who can POST make us fetch a URL.
        url = payload.get("SubscribeURL")
        where = url if isinstance(url, str) and url.startswith("https://") else "in the body"
        raise Ignored(f"SNS {sns_type}: confirm it by opening the SubscribeURL: {where}")
    if sns_type == "Notification":
        payload = load_object(req(payload, "Message", str, "storage SNS"), "storage SNS Message")
    if payload.get("Event") == "s3:TestEvent":
        raise Ignored("s3:TestEvent")
    records = req(payload, "Records", list, WHAT)
    if not records:
        raise RejectedInput(f"{WHAT}: Records is empty")
    return records


def object_version_id(
    bucket: str, key: str, version_id: str | None, etag: str | None
) -> str | None:
    """The Event id of a new object version: bucket + key + version id, else + ETag.

    None when neither is known (the caller falls back to the sender's own record id).
    `version_id` "null" (an object written while versioning was off) counts as none.
    """
    version = normal_version_id(version_id)
    if version is not None:
        return make_event_id("storage", "object", bucket, key, "version", version)
    tag = normal_etag(etag)
    if tag:
        return make_event_id("storage", "object", bucket, key, "etag", tag)
    return None


def normal_version_id(version_id: str | None) -> str | None:
    return None if not version_id or version_id == "null" else version_id


def normal_etag(etag: str | None) -> str | None:
    # Listings quote ETags ("abc"), notifications do not; hex case is not significant.
    return etag.strip('"').lower() if etag else None


def _event_id(record: Mapping[str, Any], subject: DataSubject, what: str) -> str:
    if subject.created:
        identity = object_version_id(subject.bucket, subject.key, subject.version_id, subject.etag)
        if identity is not None:
            return identity
    # A removal (or a creation naming no version or ETag): the sender's own record id. A
    # removal never shares an id with the object it removed.
    parts = (subject.bucket, subject.key)
    version = normal_version_id(subject.version_id)
    if version is not None and not subject.created:
        return make_event_id("storage", *parts, "removed", version)
    if subject.sequencer:
        return make_event_id("storage", *parts, subject.sequencer, subject.event_name)
    event_time = opt(record, "eventTime", str, what)
    if not event_time:
        raise RejectedInput(f"{what}: no s3.object.sequencer or eventTime to identify the record")
    return make_event_id("storage", *parts, subject.etag or "", event_time, subject.event_name)


def _object_key(record: Mapping[str, Any], what: str) -> str:
    """The decoded key. Its encoded form may hide what the JSON check cannot see: a NUL (no
    S3 key holds one; PostgreSQL refuses it in text) or bytes that are not UTF-8 (decoded with
    replacement characters it would name another object than the one listed)."""
    encoded = req(record, "s3.object.key", str, what)
    try:
        key = unquote_plus(encoded, errors="strict")
    except UnicodeDecodeError:
        raise RejectedInput(f"{what}: s3.object.key is not URL-encoded UTF-8") from None
    return text(key, f"{what}: s3.object.key")


def _event(record: Mapping[str, Any], event_name: str, received_at: datetime, what: str) -> Event:
    subject = DataSubject(
        bucket=req(record, "s3.bucket.name", str, what),
        key=_object_key(record, what),
        event_name=event_name,
        size=opt(record, "s3.object.size", int, what),
        etag=normal_etag(opt(record, "s3.object.eTag", str, what)),
        sequencer=opt(record, "s3.object.sequencer", str, what),
        endpoint=opt(record, "responseElements.x-minio-origin-endpoint", str, what),
        version_id=normal_version_id(opt(record, "s3.object.versionId", str, what)),
    )
    return Event(
        id=_event_id(record, subject, what),
        kind=EventKind.DATA,
        source="storage",
        subject=subject,
        received_at=received_at,
        delivery_id=opt(record, "responseElements.x-amz-request-id", str, what),
    )


def listed_object_event(
    bucket: str,
    key: str,
    *,
    size: int | None,
    etag: str | None,
    version_id: str | None,
    received_at: datetime,
) -> Event | None:
    """The Event a bucket listing entry becomes: the same id and subject fields as the object's
    notification (bucket, key, size, ETag, version id), source "reconcile", event name
    s3:ObjectCreated:Put. None for an entry with neither version id nor ETag (no identity).
    """
    event_id = object_version_id(bucket, key, version_id, etag)
    if event_id is None:
        return None
    subject = DataSubject(
        bucket=bucket,
        key=key,
        event_name=LISTED_EVENT_NAME,
        size=size,
        etag=normal_etag(etag),
        version_id=normal_version_id(version_id),
    )
    return Event(
        id=event_id,
        kind=EventKind.DATA,
        source="reconcile",
        subject=subject,
        received_at=received_at,
    )


class StorageSource:
    name = "storage"
    route = "/webhooks/storage"
    secret_setting = "storage_token"
    max_body_setting = "max_body_bytes"
    # SNS (AWS S3 notifications through SNS) posts its JSON as text/plain.
    media_types: tuple[str, ...] = ("application/json", "text/plain")
    summary = "Receive a storage delivery"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        # MinIO sends its auth_token as a Bearer token; SNS can only do Basic auth in the URL.
        check_authorization(headers, secret, WHAT, basic=True)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        events: list[Event] = []
        dropped: set[str] = set()
        for index, record in enumerate(_records(load_object(body, WHAT))):
            what = f"{WHAT} Records[{index}]"
            if not isinstance(record, dict):
                raise RejectedInput(f"{what}: not an object")
            name = req(record, "eventName", str, what)
            name = name if name.startswith("s3:") else f"s3:{name}"
            if name in KEPT_EVENTS:
                events.append(_event(record, name, received_at, what))
            else:
                dropped.add(name)
        if not events:
            raise Ignored(f"no new data: {', '.join(sorted(dropped))}")
        return events


source = StorageSource()
