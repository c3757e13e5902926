"""Registering published versions through the outbox: a real `mlflow server` on loopback
(SQLite store, from .venv-mlflow) and the Kubeflow Model Registry's HTTP double, over the real
worker and store. Version 1 with its lineage, version 2 with the alias moved only when it
published, an outage and recovery, and a resend after a crash that registers nothing new."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.service.conftest import Build, FakeClock
from tests.support.backends import ScriptedBackend
from tests.support.kubeflow_registry import KubeflowRegistryDouble
from tests.support.mlflow_server import MlflowServer, mlflow_server
from tests.support.repo import GitRepo, rules_text
from trigger_service.api import create_app
from trigger_service.database import outbox, runs, write
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.service import Services
from trigger_service.settings import Settings
from trigger_service.submit.local import LocalBackend

pytestmark = pytest.mark.slow  # starts an mlflow server


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def manual(clock: FakeClock, n: int) -> Event:
    subject = ManualSubject("songs")
    return Event(f"manual-{n}", EventKind.MANUAL, "manual", subject, clock.datetime())


def publish(services: Services, version: int, accuracy: float, model: str = "songs") -> None:
    """What the pipeline's publish step leaves on the volume (metadata.json with lineage)."""
    folder = services.settings.models_root / model / str(version)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")
    metadata = {
        "model_name": model,
        "version": version,
        "created": "2026-11-29T12:00:00+00:00",
        "metrics": {"accuracy": accuracy, "macro_f1": accuracy - 0.01},
        "data": {"uri": "s3://datasets/songs/songs.csv", "sha256": "ab" * 32},
        "lineage": {"git_commit": "", "trigger_reason": "manual"},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))


def run_once(
    services: Services,
    clock: FakeClock,
    backend: ScriptedBackend,
    n: int,
    version: int | None,
    model: str = "songs",
) -> None:
    """One manual run; it publishes `version` (None: the champion stays)."""
    services.inbox.store([manual(clock, n)])
    clock.advance(2)
    services.worker.run_until_idle()
    external = f"ext-{n}"
    if version is None:
        backend.outputs[external] = {
            "published": False,
            "reason": "not published: challenger accuracy 0.7 < champion v1 0.8 - 0.01",
        }
    else:
        publish(services, version, 0.8, model)
        backend.outputs[external] = {
            "published": True,
            "model_name": model,
            "model_version": version,
        }
    backend.finish_all()
    clock.advance(2)
    services.worker.run_until_idle()


def send(services: Services) -> int:
    assert services.outbox is not None
    return services.outbox.send_until_idle()


def mlflow_get(server: MlflowServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}/api/2.0/mlflow/{path}", params=params, timeout=60)


def mlflow_versions(server: MlflowServer, model: str = "songs") -> list[dict[str, Any]]:
    found = mlflow_get(server, "model-versions/search", filter=f"name='{model}'").json()
    return sorted(found.get("model_versions") or [], key=lambda v: int(v["version"]))


def champion(server: MlflowServer, model: str = "songs") -> str | None:
    answer = mlflow_get(server, "registered-models/alias", name=model, alias="champion")
    return answer.json()["model_version"]["version"] if answer.status_code == 200 else None


def rows(services: Services) -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def test_mlflow_registers_each_published_version_with_lineage_and_moves_the_alias(
    build: Build, clock: FakeClock, backend: ScriptedBackend, mlflow: MlflowServer
) -> None:
    services = build(model_registry="mlflow", mlflow_tracking_uri=mlflow.url)
    run_once(services, clock, backend, 1, version=1)
    assert send(services) == 1
    (first,) = mlflow_versions(mlflow)
    tags = {t["key"]: t["value"] for t in first["tags"]}
    assert first["version"] == "1" and first["source"] == "pvc://models/songs/1"
    assert tags["volume_version"] == "1"
    assert tags["kfp_run_id"] == "ext-1" and tags["decision_id"].startswith("d-")
    assert tags["event_ids"] == "manual-1" and tags["pipeline"] == "songs"
    assert len(tags["git_commit"]) == 40, "the commit the run built"
    assert tags["metric.accuracy"] == "0.8" and tags["data_uri"].startswith("s3://")
    assert champion(mlflow) == "1"

    # A run that kept the champion publishes nothing: no version, the alias stays.
    run_once(services, clock, backend, 2, version=None)
    assert send(services) == 0
    assert [v["version"] for v in mlflow_versions(mlflow)] == ["1"] and champion(mlflow) == "1"

    run_once(services, clock, backend, 3, version=2)
    send(services)
    assert [v["version"] for v in mlflow_versions(mlflow)] == ["1", "2"]
    assert champion(mlflow) == "2"

    # The run's lineage shows its registration.
    (registration,) = [r for r in rows(services) if r["payload"]["version"] == 2]
    assert registration["state"] == "delivered"
    assert registration["result"]["registry_version"] == "2"

    # A crash after the registry answered but before the row was marked delivered: the resend
    # finds the version by its volume version and creates nothing new.
    with write(services.engine) as conn:
        conn.execute(update(outbox).values(state="pending", not_before=0))
    assert send(services) == 2
    assert [v["version"] for v in mlflow_versions(mlflow)] == ["1", "2"]
    assert champion(mlflow) == "2", "replayed in order: the newest publish wins"


STAND_IN = """\
import json, pathlib, sys
args = sys.argv[1:]
def arg(name):
    return args[args.index(name) + 1]
params = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--param")
model_dir = pathlib.Path(arg("--models-root")) / arg("--model-name")
model_dir.mkdir(parents=True, exist_ok=True)
keep = pathlib.Path(__file__).with_name("keep").exists()
result = {"status": "succeeded", "published": not keep, "model_version": None,
          "reason": "not published: challenger accuracy 0.7 < champion v1 0.8 - 0.01",
          "metrics": {"accuracy": 0.8}}
if not keep:
    version = 1 + max([int(p.name) for p in model_dir.iterdir() if p.name.isdigit()] or [0])
    folder = model_dir / str(version)
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "metadata.json").write_text(json.dumps({
        "model_name": model_dir.name, "version": version, "metrics": {"accuracy": 0.8},
        "data": {"uri": arg("--data-uri"), "sha256": "ab" * 32},
        "lineage": {"git_commit": params.get("git_commit", ""),
                    "decision_id": params.get("decision_id", ""),
                    "event_ids": params.get("event_ids", "").split(",")}}))
    result.update(model_version=version, reason=f"published version {version}")
pathlib.Path(arg("--result-file")).write_text(json.dumps(result))
"""


def test_local_runs_on_the_embedded_default_register_in_mlflow(
    tmp_path: Path, mlflow: MlflowServer
) -> None:
    """The service with its worker and outbox threads, the local backend running a stand-in
    for the pipeline command that publishes onto the models folder as the real one does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "stand_in.py").write_text(STAND_IN)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {bin_dir / "stand_in.py"} "$@"\n')
    python.chmod(0o755)
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled\n"}, "init")
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(repo.url))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
        rules_path=rules,
        git_cache_dir=tmp_path / "git-cache",
        models_root=tmp_path / "models",
        runs_dir=tmp_path / "runs",
        manual_token="manual-token",
        model_registry="mlflow",
        mlflow_tracking_uri=mlflow.url,
        worker_poll_seconds=0.05,
        outbox_poll_seconds=0.05,
    )
    backend = LocalBackend(
        runs_dir=settings.runs_dir,
        models_root=settings.models_root,
        data_dir=settings.data_dir,
        python=str(python),
    )
    services = Services.build(settings, backend=backend)
    auth = {"Authorization": "Bearer manual-token"}
    body = {"pipeline": "songs", "params": {"model_name": "anthems"}}

    def trigger(n: int) -> None:
        answer = client.post("/trigger", json=body, headers={**auth, "Idempotency-Key": f"k{n}"})
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with services.engine.connect() as conn:
                states = list(conn.execute(select(runs.c.state)).scalars())
                finished = len(states) == n and set(states) == {"succeeded"}
                open_items = conn.execute(
                    select(outbox.c.id).where(outbox.c.state.in_(["pending", "sending"]))
                ).first()
            if finished and open_items is None:
                return
            time.sleep(0.1)
        raise AssertionError(f"run {n} did not finish and register: {states}")

    with TestClient(create_app(services, start_worker=True)) as client:
        trigger(1)
        (first,) = mlflow_versions(mlflow, "anthems")
        tags = {t["key"]: t["value"] for t in first["tags"]}
        assert first["source"] == "pvc://models/anthems/1"
        assert tags["event_ids"].startswith("manual-") and tags["decision_id"].startswith("d-")
        assert tags["trigger_run_id"].startswith("r-") and len(tags["git_commit"]) == 40
        assert tags["metric.accuracy"] == "0.8"
        assert champion(mlflow, "anthems") == "1"
        (bin_dir / "keep").write_text("")  # the next run keeps the champion
        trigger(2)
        assert [v["version"] for v in mlflow_versions(mlflow, "anthems")] == ["1"]
        assert champion(mlflow, "anthems") == "1"
        (bin_dir / "keep").unlink()
        trigger(3)
        assert [v["version"] for v in mlflow_versions(mlflow, "anthems")] == ["1", "2"]
        assert champion(mlflow, "anthems") == "2"
        run = client.get(f"/runs/{tags['trigger_run_id']}").json()
        (item,) = run["outbox"]
        assert item["state"] == "delivered" and item["result"]["registry_version"] == "1"


def test_an_mlflow_outage_delays_registration_and_loses_none(
    build: Build, clock: FakeClock, backend: ScriptedBackend, mlflow: MlflowServer
) -> None:
    # The module's server, stopped and started again on its port and store (the last test
    # using it); another model name than the test before.
    services = build(model_registry="mlflow", mlflow_tracking_uri=mlflow.url)
    mlflow.stop()
    try:
        run_once(services, clock, backend, 1, version=1, model="ballads")
        run_once(services, clock, backend, 2, version=2, model="ballads")
        send(services)
        waiting = [r for r in rows(services) if r["state"] == "pending"]
        assert len(waiting) == 2, "both kept; version 2 waits behind version 1"
        assert waiting[0]["attempts"] == 1 and "ConnectError" in waiting[0]["last_error"]
    finally:
        mlflow.start()
    clock.advance(400)
    send(services)
    assert [v["version"] for v in mlflow_versions(mlflow, "ballads")] == ["1", "2"]
    assert champion(mlflow, "ballads") == "2"
    assert {r["state"] for r in rows(services)} == {"delivered"}


def test_kubeflow_registry_gets_model_version_and_onnx_artifact_with_lineage(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    with KubeflowRegistryDouble(token="mr-token") as registry:
        services = build(
            model_registry="kubeflow",
            kubeflow_registry_url=registry.url,
            kubeflow_registry_token="mr-token",
            models_uri="s3://models-bucket/published",
        )
        registry.fail_next(1, 503)
        run_once(services, clock, backend, 1, version=1)
        send(services)
        assert registry.models == {}, "503: retried later"
        clock.advance(10)
        send(services)
        run_once(services, clock, backend, 2, version=None)
        run_once(services, clock, backend, 3, version=2)
        send(services)

        (model,) = registry.models.values()
        versions = sorted(registry.versions_of("songs"), key=lambda v: int(v["name"]))
        assert [v["name"] for v in versions] == ["1", "2"]
        props = versions[0]["customProperties"]
        assert props["kfp_run_id"] == {
            "string_value": "ext-1",
            "metadataType": "MetadataStringValue",
        }
        assert props["metric.accuracy"] == {
            "double_value": 0.8,
            "metadataType": "MetadataDoubleValue",
        }
        artifacts = [registry.artifacts[a] for a in registry.version_artifacts[versions[1]["id"]]]
        (artifact,) = artifacts
        assert artifact["uri"] == "s3://models-bucket/published/songs/2"
        assert artifact["modelFormatName"] == "onnx"
        assert model["customProperties"]["champion"]["string_value"] == "2"

        with write(services.engine) as conn:  # resend everything: nothing new
            conn.execute(update(outbox).values(state="pending", not_before=0))
        send(services)
        assert len(registry.versions) == 2 and len(registry.artifacts) == 2


def test_a_registry_that_refuses_drops_the_registration_and_the_run_is_unaffected(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    with KubeflowRegistryDouble(token="right") as registry:
        services = build(
            model_registry="kubeflow",
            kubeflow_registry_url=registry.url,
            kubeflow_registry_token="wrong",
        )
        run_once(services, clock, backend, 1, version=1)
        send(services)
        (row,) = rows(services)
        assert row["state"] == "dropped" and "HTTP 401" in row["last_error"]
        with services.engine.connect() as conn:
            (state,) = conn.execute(select(runs.c.state)).scalars()
        assert state == "succeeded"
