"""Cancel and logs on the local backend, through the API, with a stand-in pipeline command that
starts a child of its own (as kfp.local does): the whole process group must stop, and nothing is
published. (tests/e2e/test_local_backend.py runs the real pipeline.)"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build
from tests.support.waiting import wait_for
from trigger_service.api import create_app
from trigger_service.service import Services
from trigger_service.submit.local import LocalBackend

AUTH = {"Authorization": "Bearer manual-token"}

STAND_IN = """\
import json, pathlib, subprocess, sys, time
args = sys.argv[1:]
here = pathlib.Path(args[args.index("--result-file") + 1]).parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
(here / "child.pid").write_text(str(child.pid))
for step in ("load-data", "train"):
    print(f"Executing task '{step}'", flush=True)
    time.sleep(0.2)
print("waiting for the operator", flush=True)
time.sleep(120)
pathlib.Path(args[args.index("--models-root") + 1], "songs", "1").mkdir(parents=True)
"""


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:  # replaces conftest's scripted backend
    script = tmp_path / "bin" / "stand_in.py"
    script.parent.mkdir()
    script.write_text(STAND_IN)
    wrapper = tmp_path / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {script} "$@"\n')
    wrapper.chmod(0o755)
    return LocalBackend(
        runs_dir=tmp_path / "runs",
        models_root=tmp_path / "models",
        data_dir=tmp_path / "data",
        python=str(wrapper),
    )


@pytest.fixture
def services(build: Build, tmp_path: Path) -> Services:
    return build(backend="local", runs_dir=tmp_path / "runs")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, start_worker=False)) as test_client:
        yield test_client


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: it runs nothing.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def test_cancel_stops_the_whole_process_group_and_publishes_nothing(
    client: TestClient, services: Services, backend: LocalBackend, tmp_path: Path
) -> None:
    response = client.post("/trigger", json={"pipeline": "songs"}, headers=AUTH)
    assert response.status_code == 202, response.text
    services.worker.run_until_idle()
    (run,) = client.get("/runs").json()["items"]
    folder = backend.runs_dir / run["external_id"]
    wait_for(lambda: (folder / "child.pid").exists() and b"operator" in _log(folder))
    child = int((folder / "child.pid").read_text())
    leader = int(__import__("json").loads((folder / "state.json").read_text())["pid"])
    assert alive(child) and alive(leader)

    log = client.get(f"/runs/{run['id']}/logs", headers=AUTH)
    assert log.status_code == 200 and "Executing task 'train'" in log.text
    tail = client.get(f"/runs/{run['id']}/logs", params={"offset": 10}, headers=AUTH)
    assert tail.text == log.text[10:]

    canceled = client.post(f"/runs/{run['id']}/cancel", headers=AUTH)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["state"] == "canceled" and canceled.json()["canceled"] is True
    wait_for(lambda: not alive(child) and not alive(leader), timeout=15)

    # follow=true ends by itself: the run has ended.
    with client.stream("GET", f"/runs/{run['id']}/logs?follow=true", headers=AUTH) as stream:
        followed = b"".join(stream.iter_bytes())
    assert b"waiting for the operator" in followed
    services.worker.run_until_idle()
    time.sleep(1.1)  # the local backend's poll interval
    services.worker.run_until_idle()
    final = client.get(f"/runs/{run['id']}").json()
    assert final["state"] == "canceled" and final["model_version"] is None
    assert not (tmp_path / "models" / "songs").exists(), "a canceled run published nothing"
    assert backend.status(run["external_id"]).state.value == "canceled"


def test_a_queued_local_run_is_canceled_before_it_starts(backend: LocalBackend) -> None:
    from tests.service.test_local_backend import request

    first = backend.submit(request(backend.runs_dir.parent, "first"))
    second = backend.submit(request(backend.runs_dir.parent, "second"))
    backend.cancel(second)
    wait_for(lambda: (backend.runs_dir / first / "child.pid").exists())
    backend.cancel(first)
    wait_for(lambda: backend.status(first).state.value == "canceled")
    time.sleep(1.5)  # the runner would have taken `second` by now
    assert backend.status(second).state.value == "canceled"
    assert not (backend.runs_dir / second / "child.pid").exists(), "never started"
    backend.stop()


def _log(folder: Path) -> bytes:
    try:
        return (folder / "run.log").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_cancel_stops_a_real_pipeline_run_mid_training(tmp_path: Path) -> None:
    """The real pipeline under kfp.local (TensorFlow in a task subprocess): cancel during
    training stops every process of the run, and no model version appears."""
    import subprocess

    from tests.support.repo import GitRepo
    from trigger_service.settings import Settings

    repo = GitRepo(tmp_path / "repo")
    compiled = tmp_path / "compiled.yaml"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", "--output", str(compiled)],
        check=True, capture_output=True,
    )  # fmt: skip
    repo.commit({"pipeline.yaml": compiled.read_text()}, "the real pipeline")
    subprocess.run(
        [sys.executable, "-m", "pipeline", "demo-data", "--output",
         str(tmp_path / "data" / "songs.csv"), "--rows", "800"],
        check=True, capture_output=True,
    )  # fmt: skip
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "pipelines:\n  - name: songs\n    source:\n"
        f"      repository: {repo.url}\n      package_path: pipeline.yaml\n"
        "    defaults:\n      data_uri: songs.csv\n      model_name: songs\n      epochs: 50\n"
        "triggers:\n  - name: by-hand\n    on: manual\n"
    )
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
        rules_path=rules,
        backend="local",
        models_root=tmp_path / "models",
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
        git_cache_dir=tmp_path / "git-cache",
        manual_token="manual-token",
        worker_poll_seconds=0.1,
    )
    services = Services.build(settings)
    with TestClient(create_app(services, start_worker=True)) as client:
        assert client.post("/trigger", json={"pipeline": "songs"}, headers=AUTH).status_code == 202
        wait_for(lambda: client.get("/runs").json()["items"], timeout=120)
        (run,) = client.get("/runs").json()["items"]
        wait_for(lambda: client.get(f"/runs/{run['id']}").json()["external_id"], timeout=60)
        external = client.get(f"/runs/{run['id']}").json()["external_id"]
        folder = tmp_path / "runs" / external
        wait_for(lambda: b"Epoch 1/" in _log(folder), timeout=600)
        leader = int(__import__("json").loads((folder / "state.json").read_text())["pid"])
        members = _group(leader)
        assert len(members) >= 2, "kfp.local runs the task in processes of its own"

        canceled = client.post(f"/runs/{run['id']}/cancel", headers=AUTH)
        assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
        wait_for(lambda: not any(alive(pid) for pid in members), timeout=20)
        time.sleep(2)
        assert client.get(f"/runs/{run['id']}").json()["state"] == "canceled"
    assert not list((tmp_path / "models").glob("songs/[0-9]*")), "nothing published"


def _group(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found
