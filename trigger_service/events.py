"""The Event: one frozen, typed record of something a sender told us.

`Event.id` is derived from the sender's own delivery id where there is one, so a redelivery of
the same thing is the same Event (the inbox is idempotent on it). Subjects are kind-specific
frozen dataclasses; `to_dict`/`from_dict` give the JSON form stored in the inbox.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    CODE = "code"
    DATA = "data"
    DRIFT = "drift"
    MANUAL = "manual"


@dataclass(frozen=True)
class CodeSubject:
    """A git push. `changed_paths is None` means the sender did not say (not "nothing changed")."""

    repository: str  # clone URL (https or file://) as the sender names it
    repository_name: str  # "owner/name" as shown by the forge
    ref: str  # full ref, e.g. refs/heads/main or refs/tags/v1
    branch: str | None  # None for a tag push
    tag: str | None  # set for a tag push
    before: str
    after: str  # the commit the push leaves the ref at (all zeros on deletion)
    deleted: bool = False
    created: bool = False
    changed_paths: tuple[str, ...] | None = None
    pusher: str | None = None


@dataclass(frozen=True)
class DataSubject:
    """One object-storage record (MinIO or AWS S3 format); `key` is already URL-decoded."""

    bucket: str
    key: str
    event_name: str  # normalised with the "s3:" prefix, e.g. s3:ObjectCreated:Put
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    endpoint: str | None = None  # where MinIO says it lives, when it says
    version_id: str | None = None  # the object version, in a versioned bucket

    @property
    def created(self) -> bool:
        return self.event_name.startswith("s3:ObjectCreated:")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class DriftSubject:
    """One alert of an Alertmanager (webhook version 4) or Grafana (version 1) notification.

    `truncated_alerts`: how many alerts of the same group the sender cut (its `max_alerts`);
    they reached nobody, so the delivery's Events carry the count.
    """

    alertname: str
    status: str  # firing | resolved
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    starts_at: str = ""
    ends_at: str = ""
    group_key: str = ""
    generator_url: str = ""
    truncated_alerts: int = 0


@dataclass(frozen=True)
class ManualSubject:
    """A person's POST /trigger."""

    pipeline: str
    version: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    requested_by: str | None = None


Subject = CodeSubject | DataSubject | DriftSubject | ManualSubject

SUBJECT_TYPES: dict[EventKind, type] = {
    EventKind.CODE: CodeSubject,
    EventKind.DATA: DataSubject,
    EventKind.DRIFT: DriftSubject,
    EventKind.MANUAL: ManualSubject,
}


@dataclass(frozen=True)
class Event:
    id: str
    kind: EventKind
    # the sender's registry name (a trigger_service.sources.SOURCES key), "poll"
    # for a branch head the poll found moved (versions.poll), "reconcile" for a listed object
    source: str
    subject: Subject
    received_at: datetime
    delivery_id: str | None = None  # the sender's own id, verbatim

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "source": self.source,
            "subject": subject_to_dict(self.subject),
            "received_at": self.received_at.isoformat(),
            "delivery_id": self.delivery_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        kind = EventKind(data["kind"])
        return cls(
            id=data["id"],
            kind=kind,
            source=data["source"],
            subject=subject_from_dict(kind, data["subject"]),
            received_at=datetime.fromisoformat(data["received_at"]),
            delivery_id=data.get("delivery_id"),
        )


def subject_to_dict(subject: Subject) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every value, and this runs once per delivery.
    data = {f.name: getattr(subject, f.name) for f in fields(subject)}
    for name, value in data.items():
        if isinstance(value, tuple):
            data[name] = list(value)
        elif isinstance(value, dict):
            data[name] = dict(value)
    return data


def subject_from_dict(kind: EventKind, data: dict[str, Any]) -> Subject:
    values = dict(data)
    if kind is EventKind.CODE and values.get("changed_paths") is not None:
        values["changed_paths"] = tuple(values["changed_paths"])
    subject: Subject = SUBJECT_TYPES[kind](**values)
    return subject


def make_event_id(source: str, *parts: str) -> str:
    """A stable id from the sender's own identifiers: same parts, same id."""
    digest = hashlib.sha256("\x1f".join((source, *parts)).encode()).hexdigest()[:32]
    return f"{source}-{digest}"


def utcnow() -> datetime:
    return datetime.now(UTC)
