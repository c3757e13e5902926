"""The worker's own HTTP surface (trigger_service.api.worker_app): its probes follow the worker
loop, so the kubelet restarts a pod whose loop died, and it runs the loop for its lifetime."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import Build
from trigger_service.api.worker_app import create_worker_app


def test_probes_follow_the_worker_loop(build: Build) -> None:
    services = build()
    assert not services.worker.alive
    with TestClient(create_worker_app(services)) as client:
        assert services.worker.alive  # started by the app's lifespan
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        assert "trigger_inbox_depth" in client.get("/metrics").text
        services.worker.stop()  # as if the loop died
        assert client.get("/healthz").status_code == 503
        assert client.get("/readyz").status_code == 503
    assert not services.worker.alive


def test_readyz_needs_the_store(build: Build) -> None:
    services = build()
    with TestClient(create_worker_app(services)) as client:
        services.inbox.ping = lambda: (_ for _ in ()).throw(OSError("store gone"))  # type: ignore[method-assign]
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["error"] == "OSError"
        assert client.get("/healthz").status_code == 200  # the loop still runs: no restart
