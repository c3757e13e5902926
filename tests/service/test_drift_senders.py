"""Drift senders through the HTTP edge and the worker: Grafana's contact point on its own route,
and alert groups a sender cut short (truncatedAlerts) recorded, warned about, counted, explained.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build, FakeClock
from tests.service.test_worker import settle
from tests.sources.helpers import payload
from tests.support.alerts import grafana_alert, grafana_notification
from tests.support.backends import ScriptedBackend
from trigger_service.api import create_app
from trigger_service.service import Services

GRAFANA_TOKEN = "grafana-token"
FIELD_CASE = payload("grafana/firing-one.json")
TRUNCATED = payload("alertmanager/truncated.json")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


GRAFANA_AUTH = basic("grafana", GRAFANA_TOKEN)


@pytest.fixture
def services(build: Build) -> Services:
    return build(grafana_token=GRAFANA_TOKEN)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, start_worker=False)) as test_client:
        yield test_client


def post_grafana(client: TestClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/webhooks/grafana",
        content=json.dumps(body),
        headers=GRAFANA_AUTH if headers is None else headers,
    )


def decisions(client: TestClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/decisions", params={"limit": 200}).json()["items"]
    return items


def test_grafana_alerts_run_once_per_incident_and_never_when_resolved(
    client: TestClient, services: Services, clock: FakeClock, backend: ScriptedBackend
) -> None:
    # The shared field case, as Grafana posts it: stored, where it used to be a 400.
    first = post_grafana(client, FIELD_CASE)
    assert first.status_code == 202, first.text
    settle(services, clock, 1)
    assert backend.submit_calls == 1

    for _ in range(3):  # Grafana re-sends the firing group every repeat interval
        repeat = post_grafana(client, FIELD_CASE)
        assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
        backend.finish_all()
        settle(services, clock, 3600)
    assert backend.submit_calls == 1

    resolved = grafana_notification(grafana_alert(status="resolved"))
    resolved["alerts"][0]["fingerprint"] = FIELD_CASE["alerts"][0]["fingerprint"]
    assert post_grafana(client, resolved).status_code == 202
    settle(services, clock, 1)
    assert backend.submit_calls == 1
    assert any("alert resolved" in d["reason"] for d in decisions(client)), decisions(client)

    next_incident = copy.deepcopy(FIELD_CASE)
    next_incident["alerts"][0]["startsAt"] = "2024-06-04T08:00:00.000Z"
    assert post_grafana(client, next_incident).status_code == 202
    settle(services, clock, 1)
    assert backend.submit_calls == 2
    events = client.get("/events", params={"source": "grafana"}).json()["items"]
    assert len(events) == 3 and {e["kind"] for e in events} == {"drift"}


def test_several_alerts_in_one_grafana_group_match_the_drift_filters(
    client: TestClient, services: Services, clock: FakeClock, backend: ScriptedBackend
) -> None:
    group = grafana_notification(
        grafana_alert("songs"), grafana_alert("albums"), grafana_alert("songs", "resolved")
    )
    group["alerts"][2]["fingerprint"] = "00000000000000ff"
    response = post_grafana(client, group)
    assert response.status_code == 202 and len(response.json()["accepted"]) == 3
    settle(services, clock, 1)
    assert backend.submit_calls == 1
    reasons = sorted(d["reason"] for d in decisions(client) if d["outcome"] == "no_run")
    assert reasons == [
        "no trigger matched: alert resolved",
        "no trigger matched: label model is 'albums', wanted songs",
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("grafana", "wrong"),
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Token wrong"},
        {"Authorization": f"Bearer {GRAFANA_TOKEN}x"},
        {"Authorization": "Bearer am-token"},  # another sender's secret
    ],
)
def test_wrong_grafana_credentials_are_401_and_store_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = post_grafana(client, FIELD_CASE, headers)
    assert response.status_code == 401, response.text
    assert GRAFANA_TOKEN not in response.text
    assert client.get("/events", params={"source": "grafana"}).json()["items"] == []


def test_grafana_route_without_a_secret_refuses_everything(build: Build) -> None:
    with TestClient(create_app(build(), start_worker=False)) as client:
        response = post_grafana(client, FIELD_CASE, {"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "no secret configured" in response.text


def test_grafana_contact_point_test_and_bad_bodies(client: TestClient) -> None:
    test_alert = {
        "status": "firing",
        "labels": {"alertname": "TestAlert", "instance": "Grafana"},
        "annotations": {"summary": "Notification test"},
        "startsAt": "2024-06-03T08:00:00Z",
    }
    ignored = post_grafana(client, grafana_notification(test_alert))
    assert ignored.status_code == 200 and ignored.json()["ignored"] is True
    bad = post_grafana(client, {**FIELD_CASE, "truncatedAlerts": -2})
    assert bad.status_code == 400 and "truncatedAlerts" in bad.text
    wrong_route = client.post(
        "/webhooks/alertmanager",
        content=json.dumps(FIELD_CASE),
        headers={"Authorization": "Bearer am-token"},
    )
    assert wrong_route.status_code == 400 and "/webhooks/grafana" in wrong_route.text


def test_a_truncated_group_is_recorded_warned_counted_and_explained(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    am = {"Authorization": "Bearer am-token"}
    with caplog.at_level(logging.WARNING, logger="trigger_service.api.webhooks"):
        response = client.post("/webhooks/alertmanager", content=json.dumps(TRUNCATED), headers=am)
    assert response.status_code == 202, response.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert TRUNCATED["groupKey"] in warnings[0].getMessage()
    assert "cut 1 alert(s)" in warnings[0].getMessage()

    for event_id in response.json()["accepted"]:
        stored = client.get(f"/events/{event_id}").json()
        assert stored["subject"]["truncated_alerts"] == 1

    # A Grafana group cut as well: counted by source.
    post_grafana(client, grafana_notification(grafana_alert(), truncated=4))
    metrics = client.get("/metrics").text
    assert 'trigger_alerts_truncated_total{source="alertmanager"} 1.0' in metrics
    assert 'trigger_alerts_truncated_total{source="grafana"} 4.0' in metrics

    explained = client.post(
        "/explain",
        json={"source": "alertmanager", "payload": TRUNCATED},
        headers={"Authorization": "Bearer manual-token"},
    )
    assert explained.status_code == 200, explained.text
    for answer in explained.json()["explanations"]:
        assert answer["event"]["subject"]["truncated_alerts"] == 1
        assert "cut 1 alert(s)" in answer["warnings"][0]
    whole = client.post(
        "/explain",
        json={"source": "alertmanager", "payload": {**TRUNCATED, "truncatedAlerts": 0}},
        headers={"Authorization": "Bearer manual-token"},
    )
    assert all("warnings" not in a for a in whole.json()["explanations"])
