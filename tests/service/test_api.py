"""The HTTP edge: codes for every kind of bad input, store-before-acknowledge, reads, explain."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build
from tests.sources.helpers import payload
from tests.support.github import DOCS_PUSH, signature
from trigger_service.api import create_app
from trigger_service.service import Services

PUSH = DOCS_PUSH


def github_headers(body: bytes, secret: str = "gh-secret", delivery: str = "d-1") -> dict:
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature(body, secret),
        "Content-Type": "application/json",
    }


@pytest.fixture
def services(build: Build) -> Services:
    return build(max_body_bytes=64 * 1024, git_max_body_bytes=64 * 1024)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, start_worker=False)) as test_client:
        yield test_client


def test_signed_push_is_stored_before_202_and_redelivery_is_a_duplicate(
    client: TestClient, services: Services
) -> None:
    body = json.dumps(PUSH).encode()
    first = client.post("/webhooks/github", content=body, headers=github_headers(body))
    assert first.status_code == 202
    (event_id,) = first.json()["accepted"]
    assert services.inbox.get(event_id)["status"] == "pending"

    again = client.post("/webhooks/github", content=body, headers=github_headers(body))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["event_ids"] == [event_id]
    assert services.inbox.depth()["pending"] == 1


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (
            lambda body, headers: (body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}),
            401,
        ),
        (
            lambda body, headers: (
                body,
                {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"},
            ),
            401,
        ),
        (lambda body, headers: (body.replace(b"main", b"prod"), headers), 401),  # tampered
    ],
    ids=["wrong-signature", "missing-signature", "tampered-body"],
)
def test_bad_signatures_are_401(client: TestClient, mutate, status: int) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(PUSH).encode()
    body, headers = mutate(body, github_headers(body))
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == status
    assert "gh-secret" not in response.text


def test_malformed_and_incomplete_bodies_are_400_naming_the_problem(client: TestClient) -> None:
    for body in (b"{not json", json.dumps({"ref": "refs/heads/main"}).encode()):
        response = client.post("/webhooks/github", content=body, headers=github_headers(body))
        assert response.status_code == 400, response.text
        assert response.json()["error"]


def test_oversize_bodies_are_413_declared_or_streamed(client: TestClient) -> None:
    big = b"x" * (65 * 1024)
    declared = client.post("/webhooks/github", content=big, headers=github_headers(big))
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(65):
            yield b"y" * 1024

    streamed = client.post(
        "/webhooks/storage", content=chunks(), headers={"Authorization": "Bearer storage-token"}
    )
    assert streamed.status_code == 413


def test_route_without_a_secret_refuses_everything(client: TestClient) -> None:
    response = client.post("/webhooks/gitea", content=b"{}", headers={"X-Gitea-Event": "push"})
    assert response.status_code == 401
    assert "no secret configured" in response.json()["error"]


def test_unauthenticated_development_mode_accepts_unsigned(build: Build) -> None:
    services = build(allow_unauthenticated=True, manual_token=None)
    with TestClient(create_app(services, start_worker=False)) as client:
        response = client.post("/trigger", json={"pipeline": "songs"})
    assert response.status_code == 202


def test_manual_trigger_honours_idempotency_key_and_token(client: TestClient) -> None:
    headers = {"Authorization": "Bearer manual-token", "Idempotency-Key": "k-1"}
    first = client.post("/trigger", json={"pipeline": "songs"}, headers=headers)
    second = client.post("/trigger", json={"pipeline": "songs"}, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["accepted"] == second.json()["event_ids"]
    wrong = client.post(
        "/trigger", json={"pipeline": "songs"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert (
        client.post(
            "/trigger", json={"version": "x"}, headers=headers | {"Idempotency-Key": "k-2"}
        ).status_code
        == 400
    )


def test_storage_probe_and_ignored_events(client: TestClient) -> None:
    assert client.head("/webhooks/storage").status_code == 200
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "datasets"}
    response = client.post(
        "/webhooks/storage", json=test_event, headers={"Authorization": "Bearer storage-token"}
    )
    assert response.status_code == 200 and response.json()["ignored"] is True


def test_reads_decisions_runs_and_lineage(client: TestClient, services: Services) -> None:
    response = client.post(
        "/trigger",
        json={"pipeline": "songs", "reason": "check"},
        headers={"Authorization": "Bearer manual-token"},
    )
    (event_id,) = response.json()["accepted"]
    services.worker.run_until_idle()

    event = client.get(f"/events/{event_id}").json()
    assert event["status"] == "decided" and len(event["decisions"]) == 1
    decision = client.get(f"/decisions/{event['decisions'][0]}").json()
    assert decision["outcome"] == "run" and decision["event_ids"] == [event_id]
    run = client.get(f"/runs/{decision['run_id']}").json()
    assert run["decision"]["id"] == decision["id"]
    assert run["events"][0]["id"] == event_id
    assert run["pipeline_version"]["commit"] == run["version"]
    assert [s["state"] for s in run["states"]][:2] == ["submitting", "pending"]
    pipelines = client.get("/pipelines").json()
    assert pipelines["items"][0]["current"][0]["version"] == run["version"]
    assert client.get("/events", params={"status": "decided"}).json()["items"]
    assert client.get("/runs/r-missing").status_code == 404
    assert client.get("/events", params={"limit": 0}).status_code == 400


def test_explain_changes_nothing(client: TestClient, services: Services) -> None:
    body = {
        "source": "github",
        "headers": {"X-GitHub-Event": "push", "X-GitHub-Delivery": "e1"},
        "payload": PUSH,
    }
    response = client.post("/explain", json=body, headers={"Authorization": "Bearer manual-token"})
    assert response.status_code == 200, response.text
    (answer,) = response.json()["explanations"]
    # Git decides, not the payload's docs-only list: nothing is built yet, every path counts.
    assert answer["run"] is True and answer["payload_hint"]["changed_paths"] == ["docs/x.md"]
    assert "first build of main" in answer["matches"][0]["git"]["why"]
    assert services.inbox.depth()["pending"] == 0
    assert client.post("/explain", json=body).status_code == 401


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post(
        "/trigger", json={"pipeline": "songs"}, headers={"Authorization": "Bearer manual-token"}
    )
    metrics = client.get("/metrics").text
    assert 'trigger_inbox_depth{status="pending"}' in metrics
    assert 'trigger_events_received_total{outcome="accepted",source="manual"}' in metrics
    assert "manual-token" not in metrics


def test_a_bad_rules_file_refuses_the_start_naming_the_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "pipelines:\n  - name: songs\n    source:\n      repository: file:///x\n"
        "      package_path: p.yaml\ntriggers:\n  - name: t\n    on: push\n    pipeline: songs\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "trigger_service", "serve", "--port", "1"],
        env={
            "TRIGGER_RULES_PATH": str(rules),
            "PATH": "/usr/bin:/bin",
            "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "rules.yaml:8" in done.stderr, done.stderr


def test_secret_files_are_read_and_an_empty_one_counts_as_unset(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from trigger_service.settings import Settings

    (tmp_path / "github").write_text("s3cret\n")
    (tmp_path / "storage").write_text("\n")
    settings = Settings(
        github_secret_file=tmp_path / "github", storage_token_file=tmp_path / "storage"
    )
    assert settings.secret_for("github") == "s3cret"
    assert settings.secret_for("storage") is None
    with pytest.raises(ValidationError, match="TRIGGER_GITLAB_TOKEN_FILE"):
        Settings(gitlab_token_file=tmp_path / "missing")


def test_replay_needs_the_operator_token_and_a_finished_event(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/trigger", json={"pipeline": "songs"}, headers={"Authorization": "Bearer manual-token"}
    )
    (event_id,) = response.json()["accepted"]
    assert client.post(f"/events/{event_id}/replay").status_code == 401
    operator = {"Authorization": "Bearer manual-token"}
    assert client.post(f"/events/{event_id}/replay", headers=operator).status_code == 409
    services.worker.run_until_idle()
    replayed = client.post(f"/events/{event_id}/replay", headers=operator)
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    assert client.post("/events/nope/replay", headers=operator).status_code == 404


def test_worker_enabled_false_serves_without_a_worker(build: Build) -> None:
    services = build(worker_enabled=False)
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").status_code == 200
        assert services.worker._thread is None
    enabled = build()
    with TestClient(create_app(enabled)):
        assert enabled.worker._thread is not None and enabled.worker._thread.is_alive()


def test_explain_a_stored_event(client: TestClient) -> None:
    operator = {"Authorization": "Bearer manual-token"}
    stored = client.post("/trigger", json={"pipeline": "songs"}, headers=operator)
    (event_id,) = stored.json()["accepted"]
    response = client.post("/explain", json={"event_id": event_id}, headers=operator)
    assert response.status_code == 200, response.text
    (answer,) = response.json()["explanations"]
    assert answer["run"] is True and answer["matches"][0]["pipeline"] == "songs"
    assert answer["matches"][0]["policy_now"]["verdict"] == "go"
    missing = client.post("/explain", json={"event_id": "nope"}, headers=operator)
    assert missing.status_code == 404


def test_the_cli_compiles_the_pipeline_without_importing_it(tmp_path: Path) -> None:
    from trigger_service.cli import main

    assert main(["compile", "--output", str(tmp_path / "pipeline.yaml")]) == 0
    assert "training" in (tmp_path / "pipeline.yaml").read_text()


def test_the_service_never_imports_the_heavy_libraries() -> None:
    # A fresh interpreter: this test session itself has imported TensorFlow for the pipeline.
    probe = (
        "import sys; import trigger_service.cli, trigger_service.api, trigger_service.service;"
        "import trigger_service.submit.kfp_remote, trigger_service.submit.local;"
        "heavy = {'tensorflow', 'tf2onnx', 'onnxruntime', 'keras', 'pipeline'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_explain_a_delete_all_versions_notification_says_object_removed(
    client: TestClient,
) -> None:
    # MinIO sends s3:ObjectRemoved:DeleteAllVersions for `mc rm --versions`: a removal, not
    # "no new data".
    data = payload("storage/minio-delete.json")
    data["Records"][0]["eventName"] = "s3:ObjectRemoved:DeleteAllVersions"
    body = {"source": "storage", "headers": {}, "payload": data}
    response = client.post("/explain", json=body, headers={"Authorization": "Bearer manual-token"})
    assert response.status_code == 200, response.text
    (answer,) = response.json()["explanations"]
    assert answer["run"] is False
    assert "object removed" in answer["reason"], answer
