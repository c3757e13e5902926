"""Bucket notifications: MinIO's webhook format and AWS S3's event format (bare or inside SNS).

MinIO posts one record per request and prefixes event names with "s3:"; S3 posts several and
does not. Both URL-encode object keys the query way ("+" for a space). Only records that mean
new or removed data become Events: tagging, retention, ACL, access... changes are dropped.
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
    }
)
WHAT = "storage"


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


def _event_id(record: Mapping[str, Any], subject: DataSubject, what: str) -> str:
    parts = (subject.bucket, subject.key)
    if subject.sequencer:
        return make_event_id("storage", *parts, subject.sequencer, subject.event_name)
    event_time = opt(record, "eventTime", str, what)
    if not event_time:
        raise RejectedInput(f"{what}: no s3.object.sequencer or eventTime to identify the record")
    return make_event_id("storage", *parts, subject.etag or "", event_time, subject.event_name)


def _event(record: Mapping[str, Any], event_name: str, received_at: datetime, what: str) -> Event:
    subject = DataSubject(
        bucket=req(record, "s3.bucket.name", str, what),
        key=unquote_plus(req(record, "s3.object.key", str, what)),
        event_name=event_name,
        size=opt(record, "s3.object.size", int, what),
        etag=opt(record, "s3.object.eTag", str, what),
        sequencer=opt(record, "s3.object.sequencer", str, what),
        endpoint=opt(record, "responseElements.x-minio-origin-endpoint", str, what),
    )
    return Event(
        id=_event_id(record, subject, what),
        kind=EventKind.DATA,
        source="storage",
        subject=subject,
        received_at=received_at,
        delivery_id=opt(record, "responseElements.x-amz-request-id", str, what),
    )


class StorageSource:
    name = "storage"

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
