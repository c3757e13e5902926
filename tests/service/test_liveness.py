"""Liveness: a bad rules edit never stops the worker; a worker that dies makes the process not
ready and ends it (crash-only, its supervisor restarts it)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.service.conftest import Build, FakeClock
from tests.service.test_worker import data_event
from trigger_service import service as service_module
from trigger_service.api import create_app
from trigger_service.database import events
from trigger_service.rules.model import Rules


def alias_bomb() -> str:
    lines = ["x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 9):
        lines.append(f"x{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join([*lines, "pipelines: []", ""])


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_an_alias_bomb_reload_keeps_the_old_rules_and_says_so(
    build: Build, clock: FakeClock
) -> None:
    services = build()
    failures = metric("trigger_rules_reload_failures_total")
    path = services.settings.rules_path
    path.write_text(alias_bomb())
    os.utime(path, (time.time() + 5, time.time() + 5))  # a change the holder notices
    services.inbox.store([data_event(clock, "songs/a.csv")])
    started = time.monotonic()
    services.worker.run_until_idle()
    assert time.monotonic() - started < 10
    with services.engine.connect() as conn:
        status = conn.execute(events.select()).one().status
    assert status == "decided"  # decided with the previous rules
    assert metric("trigger_rules_reload_failures_total") == failures + 1
    assert metric("trigger_rules_reload_ok") == 0
    ready, checks = services.readiness(worker_expected=False)
    assert ready and "aliases expand" in checks["rules"]


def test_a_dead_worker_thread_fails_readiness_and_ends_the_process(build: Build) -> None:
    services = build()
    ended = threading.Event()
    reasons: list[str] = []

    def boom() -> None:
        raise SystemExit("simulated: something no tick survives")

    app = create_app(services, start_worker=True)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        services.worker.on_death = lambda reason: (reasons.append(reason), ended.set())
        services.worker.stop()  # restart the thread with a tick that kills it
        services.worker._stop.clear()
        services.worker.tick = boom  # type: ignore[method-assign]
        services.worker.start()
        assert ended.wait(10), "on_death was not called"
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert "worker thread died" in answer.json()["checks"]["worker"]
        assert metric("trigger_worker_alive") == 0
    assert "SystemExit" in reasons[0]


def test_a_deleted_rules_file_keeps_the_old_rules_and_readiness_says_so(
    build: Build, clock: FakeClock
) -> None:
    services = build()
    path = services.settings.rules_path
    good = path.read_text()
    path.unlink()
    services.inbox.store([data_event(clock, "songs/a.csv")])
    services.worker.run_until_idle()
    with services.engine.connect() as conn:
        assert conn.execute(events.select()).one().status == "decided"  # the previous rules
    ready, checks = services.readiness(worker_expected=False)
    assert ready and "cannot read" in checks["rules"] and str(path) in checks["rules"]

    path.write_text(good)  # put back (whatever its mtime): read again, the warning goes
    services.rules()
    assert "rules" not in services.readiness(worker_expected=False)[1]


def test_a_slow_rules_reload_does_not_stop_other_requests(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build()
    release = threading.Event()
    original = service_module.load_rules

    def slow_load(path: Path) -> Rules:
        release.wait(20)  # a large file: ~12 s of YAML parsing for 1 MB on this machine
        return original(path)

    monkeypatch.setattr(service_module, "load_rules", slow_load)
    path = services.settings.rules_path
    os.utime(path, (time.time() + 5, time.time() + 5))
    answers: dict[str, int] = {}
    with TestClient(create_app(services, start_worker=False)) as client:

        def manual() -> None:
            answers["trigger"] = client.post(
                "/trigger",
                json={"pipeline": "songs"},
                headers={"Authorization": "Bearer manual-token"},
            ).status_code

        def health() -> None:
            answers["healthz"] = client.get("/healthz").status_code

        trigger = threading.Thread(target=manual)
        trigger.start()
        time.sleep(0.5)  # the manual request is now inside the reload
        probe = threading.Thread(target=health)
        probe.start()
        probe.join(5)
        answered_during_reload = "healthz" in answers
        release.set()
        trigger.join(20)
        probe.join(5)
    assert answered_during_reload, "the event loop waited for the rules reload"
    assert answers == {"healthz": 200, "trigger": 202}


def test_a_read_meeting_a_changed_file_answers_with_the_rules_in_force(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build()
    release, loads = threading.Event(), []
    original = service_module.load_rules

    def slow_load(path: Path) -> Rules:
        loads.append(path)
        release.wait(20)
        return original(path)

    monkeypatch.setattr(service_module, "load_rules", slow_load)
    path = services.settings.rules_path
    os.utime(path, (time.time() + 5, time.time() + 5))
    with TestClient(create_app(services, start_worker=False)) as client:
        started = time.monotonic()
        answer = client.get("/pipelines")  # an async route: the event loop's own thread
        took = time.monotonic() - started
        assert answer.status_code == 200 and took < 5, took
        deadline = time.monotonic() + 5
        while not loads and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loads == [path]  # the reload runs, in its own thread
        assert client.get("/healthz").status_code == 200
        release.set()
    reloader = services.rules._reloader
    assert reloader is not None
    reloader.join(10)
    assert services.rules.reload_error is None
