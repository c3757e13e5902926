"""Liveness: a bad rules edit never stops the worker; a worker that dies makes the process not
ready and ends it (crash-only, its supervisor restarts it)."""

from __future__ import annotations

import os
import threading
import time

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.service.conftest import Build, FakeClock
from tests.service.test_worker import data_event
from trigger_service.api import create_app
from trigger_service.database import events


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
