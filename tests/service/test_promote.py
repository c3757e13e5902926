"""Promoting a version: the folder the model server serves (the highest) changes on a real
volume, under the publishers' lock; the registry alias moves with it through the outbox; the
HTTP route and the CLI refuse what they must."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.service.conftest import Build, FakeClock
from tests.service.test_model_registry import manual, publish, run_once
from tests.support.backends import ScriptedBackend
from tests.support.kubeflow_registry import KubeflowRegistryDouble
from tests.support.repo import GitRepo, rules_text
from tests.support.server import running_service
from trigger_service.api import create_app
from trigger_service.database import outbox
from trigger_service.modelserver.promote import (
    ModelsRootReadOnly,
    VersionNotFound,
    promote_on_volume,
    versions,
)
from trigger_service.tracking.models import read_models
from trigger_service.tracking.promotion import promote

AUTH = {"Authorization": "Bearer manual-token"}


def published(root: Path, *numbers: int) -> Path:
    model_dir = root / "songs"
    for number in numbers:
        folder = model_dir / str(number)
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(f"model {number}".encode())
        (folder / "metadata.json").write_text(json.dumps({"version": number}))
    (model_dir / ".latest_version").write_text(str(max(numbers)))
    return model_dir


def test_roll_back_retires_higher_versions_and_forward_brings_them_back(tmp_path: Path) -> None:
    model_dir = published(tmp_path, 5, 6, 7)
    back = promote_on_volume(tmp_path, "songs", 6)
    assert (back.retired, back.restored) == ([7], False)
    assert versions(model_dir) == [5, 6], "the server now serves 6, the highest"
    assert [m["version"] for m in read_models(tmp_path)] == [6, 5]
    (hidden,) = model_dir.glob(".retired-7-*")
    assert (hidden / "model.onnx").read_bytes() == b"model 7", "kept, not deleted"

    further = promote_on_volume(tmp_path, "songs", 5)
    assert further.retired == [6] and versions(model_dir) == [5]
    forward = promote_on_volume(tmp_path, "songs", 7)
    assert (forward.restored, forward.retired) == (True, [])
    assert versions(model_dir) == [5, 7]
    assert (model_dir / "7" / "model.onnx").read_bytes() == b"model 7"
    again = promote_on_volume(tmp_path, "songs", 7)
    assert (again.restored, again.retired) == (False, []), "repeating changes nothing"
    assert (model_dir / ".latest_version").read_text() == "7", "numbers still only grow"


def test_unknown_versions_bad_names_and_a_read_only_root_are_refused(tmp_path: Path) -> None:
    model_dir = published(tmp_path, 1, 2)
    with pytest.raises(VersionNotFound):
        promote_on_volume(tmp_path, "songs", 3)
    with pytest.raises(VersionNotFound):
        promote_on_volume(tmp_path, "other", 1)
    for name in ("../songs", "songs/1", ".hidden", "a\x00b", "--upload-pack=x"):
        with pytest.raises(Exception, match="not a model name"):
            promote_on_volume(tmp_path, name, 1)
    with pytest.raises(Exception, match="version: must be"):
        promote_on_volume(tmp_path, "songs", 2**40)
    if os.geteuid() != 0:  # root writes through permission bits
        model_dir.chmod(0o555)
        try:
            with pytest.raises(ModelsRootReadOnly):
                promote_on_volume(tmp_path, "songs", 1)
        finally:
            model_dir.chmod(0o755)
    assert versions(model_dir) == [1, 2]


@pytest.fixture
def registry() -> Iterator[KubeflowRegistryDouble]:
    with KubeflowRegistryDouble() as double:
        yield double


def test_the_route_moves_volume_roll_out_and_registry_alias_together(
    build: Build, tmp_path: Path, registry: KubeflowRegistryDouble
) -> None:
    services = build(model_registry="kubeflow", kubeflow_registry_url=registry.url)
    published(services.settings.models_root, 1, 2)
    with TestClient(create_app(services, start_worker=False)) as client:
        assert client.post("/models/songs/1/promote").status_code == 401
        answer = client.post("/models/songs/1/promote", headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["retired"] == [2] and body["registry"]["alias"] == "champion"
        assert "version 1" in body["rollout"]
        assert client.post("/models/songs/9/promote", headers=AUTH).status_code == 404
        for bad in ("songs/0", "songs/-1", f"songs/{2**31}", "songs/x", "..%2Fetc/1"):
            status = client.post(f"/models/{bad}/promote", headers=AUTH).status_code
            assert status in (400, 404), (bad, status)
    assert services.outbox is not None
    services.outbox.send_until_idle()
    (model,) = registry.models.values()
    assert model["customProperties"]["champion"]["string_value"] == "1"
    assert [v["name"] for v in registry.versions_of("songs")] == ["1"]


def test_the_cli_promotes_through_a_running_service(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled\n"}, "init")
    (tmp_path / "rules.yaml").write_text(rules_text(repo.url))
    models = tmp_path / "models"
    published(models, 3, 4)
    env = {
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
        "TRIGGER_RULES_PATH": str(tmp_path / "rules.yaml"),
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_MODELS_ROOT": str(models),
        "TRIGGER_MANUAL_TOKEN": "manual-token",
        "TRIGGER_LOG_JSON": "false",
    }
    with running_service(env, tmp_path / "service" / "service.log") as service:
        command = [sys.executable, "-m", "trigger_service", "models", "promote"]
        ok = subprocess.run(
            [*command, "songs", "3", "--url", service.url, "--token", "manual-token"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        refused = subprocess.run(
            [*command, "songs", "3", "--url", service.url, "--token", "wrong"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["retired"] == [4]
    assert versions(models / "songs") == [3]
    assert refused.returncode == 1 and "error" in json.loads(refused.stdout)


def test_a_promotion_between_a_publish_and_its_link_keeps_the_alias_on_the_promoted_version(
    build: Build, clock: FakeClock, backend: ScriptedBackend, registry: KubeflowRegistryDouble
) -> None:
    services = build(model_registry="kubeflow", kubeflow_registry_url=registry.url)
    assert services.outbox is not None
    run_once(services, clock, backend, 1, version=1)
    services.outbox.send_until_idle()
    # Run 2 publishes version 2 on the volume; before the worker polls it, an operator rolls
    # back to 1 (version 2 is retired); then the worker links the run to version 2.
    services.inbox.store([manual(clock, 2)])
    clock.advance(2)
    services.worker.run_until_idle()
    publish(services, 2, 0.8)
    backend.outputs["ext-2"] = {"published": True, "model_name": "songs", "model_version": 2}
    promote(
        engine=services.engine,
        models_root=services.settings.models_root,
        rollout=services.models.model_server,
        registrar=services.registrar,
        model="songs",
        version=1,
        clock=clock,
    )
    backend.finish_all()
    clock.advance(2)
    services.worker.run_until_idle()
    services.outbox.send_until_idle()
    assert sorted(v["name"] for v in registry.versions_of("songs")) == ["1", "2"]
    (model,) = registry.models.values()
    assert model["customProperties"]["champion"]["string_value"] == "1", "as the volume serves"
    assert versions(services.settings.models_root / "songs") == [1]


def test_the_cli_refuses_a_name_that_would_change_the_url_before_sending_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from trigger_service.cli import main

    # Nothing listens on port 9: a request would fail differently than this refusal.
    for name, version in (("songs/1/promote#", "5"), ("../trigger", "1"), ("songs", "0")):
        argv = ["models", "promote", name, version, "--url", "http://127.0.0.1:9", "--token", "t"]
        code = main(argv)
        assert code == 2, name
        err = capsys.readouterr().err
        assert "error:" in err and ("not a model name" in err or "version: must be" in err)


def test_a_model_name_from_pushed_code_that_leaves_the_models_root_registers_nothing(
    build: Build, clock: FakeClock, backend: ScriptedBackend, registry: KubeflowRegistryDouble
) -> None:
    services = build(model_registry="kubeflow", kubeflow_registry_url=registry.url)
    # The pipeline's outputs name the model; a pushed pipeline can name "../elsewhere".
    run_once(services, clock, backend, 1, version=1, model="../elsewhere")
    assert (services.settings.models_root / "../elsewhere/1/metadata.json").is_file()
    with services.engine.connect() as conn:
        assert conn.execute(select(outbox)).all() == [], "nothing read or queued for it"
    assert services.outbox is not None
    services.outbox.send_until_idle()
    assert registry.models == {}
