"""Bucket notifications in MinIO's and AWS S3's formats (bare and inside SNS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import DataSubject, Event, EventKind
from trigger_service.sources.storage import listed_object_event, source

from .helpers import RECEIVED, body_of, payload


def parse(data: Any) -> list[Event]:
    return source.parse({}, body_of(data), RECEIVED)


def subjects(data: Any) -> list[DataSubject]:
    found = [event.subject for event in parse(data)]
    assert all(isinstance(subject, DataSubject) for subject in found)
    return found  # type: ignore[return-value]


def test_minio_put() -> None:
    events = parse(payload("storage/minio-put.json"))
    assert [(e.kind, e.source, e.delivery_id) for e in events] == [
        (EventKind.DATA, "storage", "187AE1A2B3C4D5E7")
    ]
    subject = events[0].subject
    assert subject == DataSubject(
        bucket="datasets",
        key="songs/2026 11/data v2.csv",
        event_name="s3:ObjectCreated:Put",
        size=52431,
        etag="9b2cf535f27731c974343645a3985328",
        sequencer="187AE1A2B3C4D5E6",
        endpoint="http://10.42.0.9:9000",
    )
    assert subject.created
    assert subject.uri == "s3://datasets/songs/2026 11/data v2.csv"


def test_minio_delete_is_kept_as_not_created() -> None:
    [subject] = subjects(payload("storage/minio-delete.json"))
    assert (subject.event_name, subject.created, subject.size, subject.etag) == (
        "s3:ObjectRemoved:Delete",
        False,
        None,
        None,
    )


@pytest.mark.parametrize(
    "event_name",
    [
        "s3:ObjectCreated:PutTagging",
        "s3:ObjectCreated:PutRetention",
        "s3:ObjectCreated:PutLegalHold",
        "s3:ObjectCreated:DeleteTagging",
        "s3:ObjectAccessed:Get",
        "s3:ObjectAccessed:Head",
        "s3:ObjectRestore:Post",
        "s3:Replication:OperationCompletedReplication",
        "ObjectTagging:Put",
        "ObjectAcl:Put",
    ],
)
def test_records_that_are_not_new_data_are_ignored(event_name: str) -> None:
    data = payload("storage/minio-put-tagging.json")
    data["Records"][0]["eventName"] = event_name
    normalised = event_name if event_name.startswith("s3:") else f"s3:{event_name}"
    with pytest.raises(Ignored, match=f"^no new data: {normalised}$"):
        parse(data)


def test_s3_records_keep_new_and_removed_data_and_drop_tagging() -> None:
    found = subjects(payload("storage/s3-records.json"))
    assert [(s.event_name, s.key, s.size) for s in found] == [
        ("s3:ObjectCreated:Put", "incoming/2026-11-25/part 0001.parquet", 1048576),
        (
            "s3:ObjectCreated:CompleteMultipartUpload",
            "incoming/2026-11-25/part+0002.parquet",
            73400320,
        ),
        ("s3:ObjectRemoved:DeleteMarkerCreated", "incoming/2026-11-18/part 0001.parquet", None),
    ]
    assert {s.bucket for s in found} == {"ml-training-data"}
    assert {s.endpoint for s in found} == {None}


def test_sns_envelope_gives_the_same_event_as_the_bare_record() -> None:
    via_sns = parse(payload("storage/sns-notification.json"))
    bare = parse(payload("storage/s3-records.json"))
    assert via_sns == bare[:1]


def test_sns_subscription_confirmation_is_not_fetched_but_its_url_is_shown() -> None:
    # The operator confirms by opening the URL (logged with the 200 answer); nothing is fetched.
    data = payload("storage/sns-subscription-confirmation.json")
    with pytest.raises(Ignored, match="confirm it by opening the SubscribeURL") as caught:
        parse(data)
    assert data["SubscribeURL"] in str(caught.value)


@pytest.mark.parametrize("fixture", ["storage/s3-test-event.json", "storage/sns-notification.json"])
def test_s3_test_event_is_ignored(fixture: str) -> None:
    data = payload(fixture)
    if data.get("Type") == "Notification":
        data["Message"] = json.dumps(payload("storage/s3-test-event.json"))
    with pytest.raises(Ignored, match="s3:TestEvent"):
        parse(data)


def test_event_ids() -> None:
    put = payload("storage/minio-put.json")
    first, again = parse(put)[0], parse(payload("storage/minio-put.json"))[0]
    assert first.id == again.id
    # The identity is the object version, not the notification: another sequencer, request
    # id or time for the same bucket, key and ETag is the same event.
    put["Records"][0]["s3"]["object"]["sequencer"] = "187AE1FFFFFFFFFF"
    put["Records"][0]["eventTime"] = "2026-11-25T09:00:00.000Z"
    put["Records"][0]["eventName"] = "s3:ObjectCreated:Copy"
    assert parse(put)[0].id == first.id
    # A later write of the same key with other content is another version: another event.
    put["Records"][0]["s3"]["object"]["eTag"] = "0" * 32
    assert parse(put)[0].id != first.id
    # The same key, created then removed, are two events.
    assert parse(payload("storage/minio-delete.json"))[0].id != first.id
    ids = [event.id for event in parse(payload("storage/s3-records.json"))]
    assert len(set(ids)) == len(ids) == 3


def test_versioned_object_identity_is_its_version_id() -> None:
    put = payload("storage/minio-put.json")
    obj = put["Records"][0]["s3"]["object"]
    obj["versionId"] = "v-one"
    first = parse(put)[0]
    assert first.subject == DataSubject(
        bucket="datasets",
        key="songs/2026 11/data v2.csv",
        event_name="s3:ObjectCreated:Put",
        size=52431,
        etag="9b2cf535f27731c974343645a3985328",
        sequencer="187AE1A2B3C4D5E6",
        endpoint="http://10.42.0.9:9000",
        version_id="v-one",
    )
    # Two versions with the same content are still two versions.
    obj["versionId"] = "v-two"
    assert parse(put)[0].id != first.id
    # "null" is MinIO's and S3's version id of an object written while versioning was off.
    obj["versionId"] = "null"
    del put["Records"][0]["s3"]["object"]["sequencer"]
    assert parse(put)[0].subject.version_id is None  # type: ignore[union-attr]
    assert parse(put)[0].id == parse(payload("storage/minio-put.json"))[0].id


@pytest.mark.parametrize("fixture", ["storage/minio-put.json", "storage/s3-records.json"])
def test_a_listed_object_is_the_same_event_as_its_notification(fixture: str) -> None:
    notified = parse(payload(fixture))[0]
    subject = notified.subject
    assert isinstance(subject, DataSubject)
    listed = listed_object_event(
        subject.bucket,
        subject.key,
        size=subject.size,
        etag=f'"{subject.etag}"',  # listings quote the ETag
        version_id=subject.version_id,
        received_at=RECEIVED,
    )
    assert listed is not None
    assert (listed.id, listed.kind, listed.source) == (notified.id, EventKind.DATA, "reconcile")
    same = ("bucket", "key", "size", "etag", "version_id", "created", "uri")
    assert {f: getattr(listed.subject, f) for f in same} == {f: getattr(subject, f) for f in same}


def test_a_listed_entry_without_version_or_etag_has_no_identity() -> None:
    kwargs = {"size": 1, "etag": None, "version_id": "null", "received_at": RECEIVED}
    assert listed_object_event("b", "k", **kwargs) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event_name",
    [
        "s3:ObjectRemoved:DeleteAllVersions",
        "ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
    ],
)
def test_removals_are_kept_as_not_created_and_never_share_the_objects_id(event_name: str) -> None:
    created = parse(payload("storage/minio-put.json"))[0]
    data = payload("storage/minio-put.json")
    data["Records"][0]["eventName"] = event_name
    [removed] = parse(data)
    assert isinstance(removed.subject, DataSubject)
    assert not removed.subject.created
    assert removed.subject.event_name.startswith("s3:ObjectRemoved:")
    assert removed.id != created.id
    # Redelivery of the removal is the same event.
    assert parse(data)[0].id == removed.id


def test_event_id_without_version_etag_or_sequencer_uses_time() -> None:
    data = payload("storage/minio-put.json")
    del data["Records"][0]["s3"]["object"]["sequencer"]
    del data["Records"][0]["s3"]["object"]["eTag"]
    first = parse(data)[0]
    assert first.id == parse(data)[0].id
    data["Records"][0]["eventTime"] = "2026-11-25T07:41:13.000Z"
    assert parse(data)[0].id != first.id
    del data["Records"][0]["eventTime"]
    with pytest.raises(RejectedInput, match=r"no s3\.object\.sequencer or eventTime"):
        parse(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "storage: missing field Records"),
        ({"Records": []}, "storage: Records is empty"),
        ({"Records": ["x"]}, r"storage Records\[0\]: not an object"),
        (
            {"Records": [{"eventName": 3}]},
            r"storage Records\[0\]: field eventName must be a string",
        ),
        (
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]},
            r"storage Records\[0\]: missing field s3.object.key",
        ),
        ({"Type": "Notification", "Message": "{"}, "storage SNS Message: malformed JSON"),
        ({"Type": "Notification", "Message": {}}, "storage SNS: field Message must be a string"),
        ({"Type": 5}, "storage: field Type must be a string"),
    ],
)
def test_malformed_notifications(data: Any, message: str) -> None:
    with pytest.raises(RejectedInput, match=f"^{message}"):
        parse(data)


def test_size_must_be_an_integer() -> None:
    data = payload("storage/minio-put.json")
    data["Records"][0]["s3"]["object"]["size"] = "52431"
    with pytest.raises(RejectedInput, match=r"field s3\.object\.size must be an integer"):
        parse(data)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("songs/a%00b.csv", r"s3\.object\.key: contains a NUL character"),
        ("songs/%FF.csv", r"s3\.object\.key is not URL-encoded UTF-8"),
        ("songs/%ED%A0%80.csv", r"s3\.object\.key is not URL-encoded UTF-8"),
    ],
)
def test_an_encoded_key_that_names_no_object_is_refused(encoded: str, message: str) -> None:
    # The JSON check sees only the encoded key; what it decodes to must be storable text too.
    data = payload("storage/minio-put.json")
    data["Records"][0]["s3"]["object"]["key"] = encoded
    with pytest.raises(RejectedInput, match=rf"^storage Records\[0\]: {message}"):
        parse(data)


def test_an_encoded_unicode_key_decodes_to_the_listed_name() -> None:
    data = payload("storage/minio-put.json")
    data["Records"][0]["s3"]["object"]["key"] = "songs/%C3%A9+%E6%97%A5%2B1.csv"
    assert parse(data)[0].subject.key == "songs/é 日+1.csv"
