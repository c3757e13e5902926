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
        tmp_path / "runs", tmp_path / "models", tmp_path / "data", python=str(wrapper)
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
