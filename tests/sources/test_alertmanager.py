"""Alertmanager webhook notifications (version 4), without a running Alertmanager."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import DriftSubject, Event, EventKind
from trigger_service.sources.alertmanager import label_fingerprint, source

from .helpers import RECEIVED, body_of
from .samples import ALERT_BODY


def notification(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ALERT_BODY)
    data.update(changes)
    return data


def alert(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = notification()["alerts"][0]
    data.update(changes)
    return data


def parse(data: Any) -> list[Event]:
    return source.parse({}, body_of(data), RECEIVED)


def test_one_event_per_alert() -> None:
    second = alert(labels={"alertname": "ModelDrift", "model": "fraud"}, fingerprint="aa")
    events = parse(notification(alerts=[alert(), second]))
    assert [(e.kind, e.source) for e in events] == [(EventKind.DRIFT, "alertmanager")] * 2
    assert events[0].subject == DriftSubject(
        alertname="ModelDrift",
        status="firing",
        labels={"alertname": "ModelDrift", "model": "churn"},
        annotations={"summary": "PSI above 0.2"},
        fingerprint="2d5f7e0c3a1b4c6d",
        starts_at="2026-11-25T07:00:00Z",
        ends_at="0001-01-01T00:00:00Z",
        group_key='{}:{alertname="ModelDrift"}',
        generator_url="http://prom:9090/graph",
    )
    assert events[0].id != events[1].id


def test_repeat_is_the_same_event_and_resolution_is_not() -> None:
    [first] = parse(notification())
    [repeat] = parse(notification())
    resolved_alert = alert(status="resolved", endsAt="2026-11-25T07:30:00Z")
    [resolved] = parse(notification(status="resolved", alerts=[resolved_alert]))
    [refired] = parse(notification(alerts=[alert(startsAt="2026-11-25T09:00:00Z")]))
    assert first.id == repeat.id
    assert len({first.id, resolved.id, refired.id}) == 3
    assert isinstance(resolved.subject, DriftSubject) and resolved.subject.status == "resolved"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # prometheus/common model TestMetricToFingerprint: 14695981039346656037 and
        # 5799056148416392346, printed the way Alertmanager prints fingerprints (%016x).
        ({}, f"{14695981039346656037:016x}"),
        (
            {"name": "garland, briggs", "fear": "love is not enough"},
            f"{5799056148416392346:016x}",
        ),
    ],
)
def test_label_fingerprint_matches_prometheus(labels: dict[str, str], expected: str) -> None:
    assert label_fingerprint(labels) == expected


def test_missing_fingerprint_is_computed_from_labels() -> None:
    labels = {"model": "churn", "alertname": "ModelDrift"}
    bare = {k: v for k, v in alert(labels=labels).items() if k != "fingerprint"}
    [event] = parse(notification(alerts=[bare]))
    assert isinstance(event.subject, DriftSubject)
    assert event.subject.fingerprint == label_fingerprint(dict(sorted(labels.items())))
    [again] = parse(notification(alerts=[bare | {"labels": dict(reversed(labels.items()))}]))
    assert again.id == event.id  # label order does not matter


def test_alert_without_alertname() -> None:
    [event] = parse(notification(alerts=[alert(labels={"job": "model"})]))
    assert isinstance(event.subject, DriftSubject) and event.subject.alertname == ""


def test_no_alerts_is_ignored() -> None:
    with pytest.raises(Ignored, match="without alerts"):
        parse(notification(alerts=[]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (notification(version="3"), "alertmanager: unsupported webhook version '3'"),
        (notification(version=4), "alertmanager: unsupported webhook version 4"),
        ({"alerts": []}, "alertmanager: unsupported webhook version None"),
        (notification(groupKey=None), "alertmanager: missing field groupKey"),
        (notification(alerts={}), "alertmanager: field alerts must be a list"),
        (notification(alerts=[1]), r"alertmanager alerts\[0\]: not an object"),
        (
            notification(alerts=[alert(status="pending")]),
            r"alertmanager alerts\[0\]: status must be firing or resolved",
        ),
        (
            notification(alerts=[alert(labels={"a": 1})]),
            r"alertmanager alerts\[0\]: field labels must map strings to strings",
        ),
        (
            notification(alerts=[alert(startsAt=None)]),
            r"alertmanager alerts\[0\]: missing field startsAt",
        ),
    ],
)
def test_malformed_notifications(data: Any, message: str) -> None:
    with pytest.raises(RejectedInput, match=f"^{message}"):
        parse(data)
