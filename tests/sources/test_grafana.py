"""Grafana-managed alerting's webhook contact point (version 1), and groups cut by max_alerts
from either alert sender."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trigger_service.errors import Ignored, RejectedInput, Unauthorized
from trigger_service.events import DriftSubject, Event, EventKind
from trigger_service.sources import SOURCES, truncated_groups
from trigger_service.sources.alertmanager import source as alertmanager
from trigger_service.sources.grafana import source as grafana

from .helpers import RECEIVED, SECRET, basic, body_of, payload

DOCS = payload("grafana/docs-example.json")
FIELD_CASE = payload("grafana/firing-one.json")
TRUNCATED = payload("alertmanager/truncated.json")


def parse(data: Any) -> list[Event]:
    return grafana.parse({}, body_of(data), RECEIVED)


def changed(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(data), **changes}


def with_alert(data: dict[str, Any], index: int = 0, **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(data)
    result["alerts"][index].update(changes)
    return result


def subjects(events: list[Event]) -> list[DriftSubject]:
    found = [e.subject for e in events]
    assert all(isinstance(s, DriftSubject) for s in found)
    return found  # type: ignore[return-value]


def test_the_registry_has_a_grafana_route() -> None:
    assert SOURCES["grafana"] is grafana


def test_field_case_is_one_drift_event() -> None:
    [event] = parse(FIELD_CASE)
    assert (event.kind, event.source) == (EventKind.DRIFT, "grafana")
    assert event.id.startswith("grafana-")
    assert event.subject == DriftSubject(
        alertname="ModelDrift",
        status="firing",
        labels={"alertname": "ModelDrift", "model": "songs", "severity": "warning"}
        | {"grafana_folder": "ml"},
        annotations={"summary": "Model songs drifted"},
        fingerprint="a1b2c3d4e5f60718",
        starts_at="2024-06-03T08:00:00.000Z",
        ends_at="0001-01-01T00:00:00Z",
        group_key=FIELD_CASE["groupKey"],
        generator_url="http://prometheus.example/graph?g0.expr=model_drift_score",
        truncated_alerts=0,
    )


def test_documented_example_is_one_event_per_alert_in_the_group() -> None:
    events = parse(DOCS)
    assert [s.alertname for s in subjects(events)] == ["High memory usage", "High CPU usage"]
    assert [s.fingerprint for s in subjects(events)] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
    assert len({e.id for e in events}) == 2


def test_repeat_is_the_same_event_resolution_and_next_incident_are_not() -> None:
    [first] = parse(FIELD_CASE)
    # Grafana re-sends the group every repeat interval; its own fields (title, values) vary.
    repeat_body = with_alert(FIELD_CASE, values={"B": 0.47}, valueString="value=0.47")
    [repeat] = parse(changed(repeat_body, title="[FIRING:1] again", message="..."))
    resolved_body = with_alert(FIELD_CASE, status="resolved", endsAt="2024-06-03T09:00:00Z")
    [resolved] = parse(changed(resolved_body, status="resolved", state="ok"))
    [next_incident] = parse(with_alert(FIELD_CASE, startsAt="2024-06-04T08:00:00Z"))
    assert repeat.id == first.id
    assert len({first.id, resolved.id, next_incident.id}) == 3
    assert subjects([resolved])[0].status == "resolved"


def test_same_alert_from_grafana_and_alertmanager_are_different_events() -> None:
    [from_grafana] = parse(FIELD_CASE)
    [from_alertmanager] = alertmanager.parse(
        {}, body_of(changed(FIELD_CASE, version="4")), RECEIVED
    )
    assert from_grafana.id != from_alertmanager.id


def test_contact_point_test_button_is_ignored() -> None:
    # What Grafana posts when someone presses "Test" on the contact point.
    test_alert = {
        "status": "firing",
        "labels": {"alertname": "TestAlert", "instance": "Grafana"},
        "annotations": {"summary": "Notification test"},
        "startsAt": "2024-06-03T08:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "57c6d9296de2ad39",
    }
    with pytest.raises(Ignored, match="test notification"):
        parse(changed(FIELD_CASE, alerts=[test_alert]))
    # A real alert in the same group is not a test.
    assert len(parse(changed(FIELD_CASE, alerts=[test_alert, FIELD_CASE["alerts"][0]]))) == 2


def test_no_alerts_is_ignored() -> None:
    with pytest.raises(Ignored, match="without alerts"):
        parse(changed(FIELD_CASE, alerts=[]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (changed(FIELD_CASE, version="4"), r"grafana: unsupported webhook version '4' \(Alert"),
        (changed(FIELD_CASE, version=1), "grafana: unsupported webhook version 1$"),
        ({"alerts": []}, "grafana: unsupported webhook version None"),
        (changed(FIELD_CASE, groupKey=None), "grafana: missing field groupKey"),
        (changed(FIELD_CASE, alerts="x"), "grafana: field alerts must be a list"),
        (changed(FIELD_CASE, truncatedAlerts=-1), "grafana: field truncatedAlerts must be betw"),
        (changed(FIELD_CASE, truncatedAlerts=2**64), "grafana: field truncatedAlerts must be betw"),
        (changed(FIELD_CASE, truncatedAlerts="1"), "grafana: field truncatedAlerts must be an"),
        (changed(FIELD_CASE, truncatedAlerts=True), "grafana: field truncatedAlerts must be an"),
        (with_alert(FIELD_CASE, status="pending"), r"grafana alerts\[0\]: status must be"),
        (with_alert(FIELD_CASE, status="alerting"), r"grafana alerts\[0\]: status must be"),
        (with_alert(FIELD_CASE, labels={"model": 1}), r"grafana alerts\[0\]: field labels"),
        (with_alert(FIELD_CASE, startsAt=""), r"grafana alerts\[0\]: missing field startsAt"),
        ([FIELD_CASE], "grafana: expected a JSON object"),
    ],
)
def test_malformed_notifications_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(RejectedInput, match=f"^{message}"):
        parse(data)


def test_alertmanager_route_points_grafana_to_its_own() -> None:
    with pytest.raises(RejectedInput, match=r"version '1' \(Grafana-managed alerts go to"):
        alertmanager.parse({}, body_of(FIELD_CASE), RECEIVED)


# --- credentials, as the contact point sends them


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {SECRET}",  # Authorization header, default scheme
        f"Token {SECRET}",  # Authorization header, a scheme of the user's choice
        f"ApiKey   {SECRET} ",
        basic("grafana", SECRET),  # HTTP Basic: any user name, the password is the secret
        basic("", SECRET),
    ],
)
def test_contact_point_credentials_verify(authorization: str) -> None:
    grafana.verify({"authorization": authorization}, b"{}", SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": SECRET},  # no scheme
        {"authorization": f"Bearer {SECRET}x"},
        {"authorization": "Token wrong"},
        {"authorization": f"Basic {SECRET}"},  # not base64 of user:password
        {"authorization": basic(SECRET, "wrong")},  # the secret as user name is not enough
        {"authorization": basic("grafana", SECRET + " ")},
        {"x-grafana-token": SECRET},
    ],
)
def test_wrong_credentials_are_unauthorized(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized) as caught:
        grafana.verify(headers, b"{}", SECRET)
    assert SECRET not in str(caught.value)


# --- truncatedAlerts, from either sender


def test_truncated_alertmanager_group_is_stored_on_every_event_of_the_delivery() -> None:
    events = alertmanager.parse({}, body_of(TRUNCATED), RECEIVED)
    assert [s.truncated_alerts for s in subjects(events)] == [1, 1]
    assert truncated_groups(events) == {TRUNCATED["groupKey"]: 1}
    # The count is not part of the identity: the same alert, cut or not, is the same Event.
    whole = alertmanager.parse({}, body_of(changed(TRUNCATED, truncatedAlerts=0)), RECEIVED)
    assert [e.id for e in whole] == [e.id for e in events]
    assert truncated_groups(whole) == {}


def test_truncated_grafana_group_is_stored_too() -> None:
    events = parse(changed(DOCS, truncatedAlerts=3))
    assert [s.truncated_alerts for s in subjects(events)] == [3, 3]
    assert truncated_groups(events) == {"{}:{}": 3}


def test_absent_truncated_alerts_is_zero() -> None:
    data = changed(FIELD_CASE)
    del data["truncatedAlerts"]
    assert subjects(parse(data))[0].truncated_alerts == 0
