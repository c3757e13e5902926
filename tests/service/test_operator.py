"""Operator routes: cancel runs and waiting decisions, pause/resume triggers, rules status, logs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build, FakeClock
from tests.support.backends import ScriptedBackend
from trigger_service.api import create_app
from trigger_service.service import Services
from trigger_service.submit.base import RunState

AUTH = {"Authorization": "Bearer manual-token"}


@pytest.fixture
def services(build: Build) -> Services:
    return build()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, start_worker=False)) as test_client:
        yield test_client


def manual(client: TestClient, **body: object) -> str:
    response = client.post("/trigger", json={"pipeline": "songs", **body}, headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["accepted"][0])


def decision_of(client: TestClient, event_id: str) -> dict:
    (decision_id,) = client.get(f"/events/{event_id}").json()["decisions"]
    return dict(client.get(f"/decisions/{decision_id}").json())


def test_a_run_is_canceled_on_its_backend_and_never_polled_again(
    client: TestClient, services: Services, backend: ScriptedBackend, clock: FakeClock
) -> None:
    event_id = manual(client)
    services.worker.run_until_idle()
    run_id = decision_of(client, event_id)["run_id"]
    assert client.post(f"/runs/{run_id}/cancel").status_code == 401

    response = client.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": run_id,
        "state": "canceled",
        "canceled": True,
        "detail": "canceled by an operator",
    }
    assert backend.states["ext-1"] is RunState.CANCELED
    # A backend that would now say "succeeded" is not asked again: nothing is linked.
    backend.states["ext-1"] = RunState.SUCCEEDED
    backend.outputs["ext-1"] = {"published": True, "model_name": "songs", "model_version": 7}
    clock.advance(2)
    services.worker.run_until_idle()
    run = client.get(f"/runs/{run_id}").json()
    assert run["state"] == "canceled" and run["model_version"] is None
    assert run["states"][-1] == {
        "state": "canceled",
        "at": run["states"][-1]["at"],
        "detail": "canceled by an operator",
    }

    again = client.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert again.status_code == 409 and "already ended: canceled" in again.json()["detail"]
    assert client.post("/runs/r-nope/cancel", headers=AUTH).status_code == 404


def test_a_backend_that_stops_slowly_records_the_request_and_the_poll_ends_it(
    client: TestClient, services: Services, backend: ScriptedBackend, clock: FakeClock
) -> None:
    event_id = manual(client)
    services.worker.run_until_idle()
    run_id = decision_of(client, event_id)["run_id"]
    backend.cancel = lambda external_id: None  # type: ignore[method-assign]  # KFP: CANCELING
    response = client.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["canceled"] is False and response.json()["state"] == "pending"
    assert client.get(f"/runs/{run_id}").json()["states"][-1]["detail"] == (
        "cancel requested (scripted)"
    )
    backend.states["ext-1"] = RunState.CANCELED
    clock.advance(2)  # the next poll
    services.worker.run_until_idle()
    assert client.get(f"/runs/{run_id}").json()["state"] == "canceled"


def test_a_collecting_decision_is_canceled_before_it_runs(
    client: TestClient, services: Services, backend: ScriptedBackend, clock: FakeClock
) -> None:
    body = {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {
        "bucket": {"name": "datasets"},
        "object": {"key": "songs/a.csv", "eTag": "e1", "size": 10, "sequencer": "01"},
    }}], "EventName": "s3:ObjectCreated:Put", "Key": "datasets/songs/a.csv"}  # fmt: skip
    stored = client.post(
        "/webhooks/storage", json=body, headers={"Authorization": "Bearer storage-token"}
    )
    assert stored.status_code == 202, stored.text
    services.worker.run_until_idle()
    decision = decision_of(client, stored.json()["accepted"][0])
    assert decision["state"] == "collecting"

    response = client.post(f"/decisions/{decision['id']}/cancel", headers=AUTH)
    assert response.status_code == 200 and response.json()["state"] == "canceled"
    clock.advance(600)
    services.worker.run_until_idle()
    after = client.get(f"/decisions/{decision['id']}").json()
    assert after["state"] == "canceled" and after["outcome"] == "no_run"
    assert after["reason"].startswith("canceled by an operator (was: ")
    assert backend.submit_calls == 0
    again = client.post(f"/decisions/{decision['id']}/cancel", headers=AUTH)
    assert again.status_code == 409


def test_a_paused_trigger_decides_no_run_survives_a_restart_and_shows_in_explain(
    client: TestClient, services: Services, build: Build, backend: ScriptedBackend
) -> None:
    assert client.post("/triggers/by-hand/pause", json={}).status_code == 401
    assert client.post("/triggers/nope/pause", headers=AUTH).status_code == 404
    paused = client.post(
        "/triggers/by-hand/pause", json={"reason": "data fix in progress"}, headers=AUTH
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert paused.json()["pause_reason"] == "data fix in progress"

    event_id = manual(client)
    services.worker.run_until_idle()
    decision = decision_of(client, event_id)
    assert decision["outcome"] == "no_run" and decision["reason"] == "trigger paused: by-hand"
    assert backend.submit_calls == 0

    explained = client.post("/explain", json={"event_id": event_id}, headers=AUTH).json()
    (answer,) = explained["explanations"]
    assert answer["run"] is False and answer["reason"] == "trigger paused: by-hand"
    assert answer["matches"][0]["paused"] is True

    # A new process on the same store still has it paused.
    with TestClient(create_app(build(), start_worker=False)) as restarted:
        triggers = {t["name"]: t for t in restarted.get("/rules").json()["triggers"]}
        assert triggers["by-hand"]["paused"] is True and triggers["code"]["paused"] is False

    resumed = client.post("/triggers/by-hand/resume", headers=AUTH)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    manual(client, reason="after resume")
    services.worker.run_until_idle()
    assert backend.submit_calls == 1


def test_rules_status_names_the_content_in_force_and_the_last_refused_edit(
    client: TestClient, services: Services
) -> None:
    first = client.get("/rules").json()
    path = Path(first["path"])
    assert len(first["sha256"]) == 64 and first["last_refused_edit"] is None
    assert first["pipelines"] == ["songs"]
    assert [t["name"] for t in first["triggers"]] == ["code", "new-data", "drift", "by-hand"]

    good = path.read_text()
    path.write_text(good + "  - name: broken\n    on: nonsense\n")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    status = client.get("/rules").json()
    assert status["sha256"] == first["sha256"], "the previous rules stay in force"
    refused = status["last_refused_edit"]
    assert refused is not None and "triggers" in refused["error"], refused
    assert refused["sha256"] != first["sha256"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"RulesStatusOut", "TriggerStatus", "CancelResult"} <= set(schema)


def test_logs_are_for_operators_and_only_for_runs_that_keep_one_here(
    client: TestClient, services: Services
) -> None:
    event_id = manual(client)
    services.worker.run_until_idle()
    run_id = decision_of(client, event_id)["run_id"]
    assert client.get(f"/runs/{run_id}/logs").status_code == 401
    assert client.get("/runs/r-nope/logs", headers=AUTH).status_code == 404
    answer = client.get(f"/runs/{run_id}/logs", headers=AUTH)
    assert answer.status_code == 409 and "has no log here" in answer.json()["detail"]
    too_far = client.get(f"/runs/{run_id}/logs", params={"offset": -1}, headers=AUTH)
    assert too_far.status_code == 400
    assert json.loads(answer.text)["detail"].startswith(f"run {run_id} (scripted)")


@pytest.mark.parametrize("bad", ["a%00b", "..%2F..%2Fetc", "x" * 300, "%ED%A0%80", "a%20b"])
def test_bad_ids_and_names_are_400_naming_the_field(client: TestClient, bad: str) -> None:
    for method, path in (
        ("POST", f"/runs/{bad}/cancel"),
        ("POST", f"/decisions/{bad}/cancel"),
        ("GET", f"/runs/{bad}/logs"),
        ("POST", f"/triggers/{bad}/pause"),
    ):
        answer = client.request(method, path, headers=AUTH)
        assert answer.status_code in (400, 404), (path, answer.status_code)
        if answer.status_code == 400:
            assert "path." in answer.json()["error"], answer.text
    assert (
        client.post("/triggers/by-hand/pause", json={"reason": "x" * 501}, headers=AUTH).status_code
        == 400
    )


def test_a_collecting_decision_waits_while_its_trigger_is_paused(
    client: TestClient, services: Services, backend: ScriptedBackend, clock: FakeClock
) -> None:
    body = {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {
        "bucket": {"name": "datasets"},
        "object": {"key": "songs/c.csv", "eTag": "e3", "size": 10, "sequencer": "03"},
    }}], "EventName": "s3:ObjectCreated:Put", "Key": "datasets/songs/c.csv"}  # fmt: skip
    stored = client.post(
        "/webhooks/storage", json=body, headers={"Authorization": "Bearer storage-token"}
    )
    services.worker.run_until_idle()
    decision = decision_of(client, stored.json()["accepted"][0])
    assert decision["state"] == "collecting"
    assert client.post("/triggers/new-data/pause", headers=AUTH).status_code == 200
    clock.advance(600)  # past the debounce and the max wait
    services.worker.run_until_idle()
    assert client.get(f"/decisions/{decision['id']}").json()["state"] == "collecting"
    assert backend.submit_calls == 0
    assert client.post("/triggers/new-data/resume", headers=AUTH).status_code == 200
    services.worker.run_until_idle()
    assert client.get(f"/decisions/{decision['id']}").json()["state"] == "submitted"
    assert backend.submit_calls == 1


def test_a_run_that_ended_just_before_the_cancel_is_a_conflict_not_an_error(
    client: TestClient, services: Services, backend: ScriptedBackend
) -> None:
    from trigger_service.errors import PermanentError

    event_id = manual(client)
    services.worker.run_until_idle()
    run_id = decision_of(client, event_id)["run_id"]
    backend.states["ext-1"] = RunState.SUCCEEDED  # finished; the poll has not seen it yet

    def refuse(external_id: str) -> None:
        raise PermanentError("KFP answered 400: the run has finished")

    backend.cancel = refuse  # type: ignore[method-assign]
    answer = client.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert answer.status_code == 409 and "ended before the cancel" in answer.json()["detail"]
    backend.states["ext-1"] = RunState.RUNNING  # a refusal for another reason is the backend's
    assert client.post(f"/runs/{run_id}/cancel", headers=AUTH).status_code == 502
