"""Pauses, cancels, status and the console's timeline search on a real PostgreSQL (the shared
store of several replicas): the same statements as on SQLite, and NUL or LIKE wildcards in a
search never reach the database as an error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build
from tests.support.postgres import (
    PostgresCluster,
    cluster_or_skip,
)
from trigger_service.api import create_app

AUTH = {"Authorization": "Bearer manual-token"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    with cluster_or_skip() as cluster:
        yield cluster


def test_operator_routes_and_console_on_postgresql(
    postgres: PostgresCluster,
    build: Build,
) -> None:
    services = build(database_url=postgres.url)
    with TestClient(create_app(services, start_worker=False)) as client:
        assert client.post("/triggers/drift/pause", json={"reason": "r"}, headers=AUTH).json()[
            "paused"
        ]
        again = client.post("/triggers/drift/pause", headers=AUTH)
        assert again.status_code == 200 and again.json()["pause_reason"] == "r", "first pause kept"

        stored = client.post("/trigger", json={"pipeline": "songs"}, headers=AUTH)
        event_id = stored.json()["accepted"][0]
        services.worker.run_until_idle()
        (decision_id,) = client.get(f"/events/{event_id}").json()["decisions"]
        run_id = client.get(f"/decisions/{decision_id}").json()["run_id"]
        canceled = client.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"

        status = client.get("/status").json()
        assert status["recent_decisions"][0]["id"] == decision_id
        assert {t["name"]: t["paused"] for t in status["rules"]["triggers"]}["drift"] is True

        for text in (event_id[-10:], "100%_x", "a\x00b", "\\"):
            page = client.get("/ui", params={"q": text, "partial": "1"})
            assert page.status_code == 200, text
        assert event_id in client.get("/ui", params={"q": event_id[-10:], "partial": "1"}).text
        assert client.get(f"/ui/decisions/{decision_id}").status_code == 200
        assert client.post("/triggers/drift/resume", headers=AUTH).json()["paused"] is False
