"""Sender values of any length, on a real PostgreSQL (which, unlike SQLite, enforces widths).

A delivery id over 256 characters is stored (202, not a 503 the sender retries for ever), and
an object under a 300-character folder with `batch_by: prefix` is decided together with the
ten events claimed beside it, instead of holding them all `claimed`. An event whose decision
PostgreSQL can never record (a NUL in its key) dead-letters alone with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from demo.payloads import storage_event
from tests.service.conftest import Build
from tests.support.postgres import (
    PostgresCluster,
    cluster_or_skip,
)
from tests.support.repo import GitRepo, rules_text
from trigger_service.api import create_app
from trigger_service.database import decisions, events

pytestmark = pytest.mark.slow

HEADERS = {"Authorization": "Bearer storage-token", "Content-Type": "application/json"}


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    with cluster_or_skip() as cluster:
        yield cluster


def body(key: str, request_id: str | None = None) -> str:
    payload = storage_event("datasets", key, 10)
    if request_id is not None:
        payload["Records"][0]["responseElements"] = {"x-amz-request-id": request_id}
    return json.dumps(payload)


def test_long_delivery_id_and_long_batch_folder(
    build: Build, repo: GitRepo, postgres: PostgresCluster
) -> None:
    rules = rules_text(repo.url).replace(
        "      debounce_seconds: 30", "      debounce_seconds: 30\n      batch_by: prefix"
    )
    services = build(rules=rules, database_url=postgres.url)
    long_id = "req-" + "7" * 296
    folder = "songs/" + "f" * 293 + "/"  # a 300-character folder (with its slashes)
    with TestClient(create_app(services, start_worker=False)) as client:
        answer = client.post(
            "/webhooks/storage", content=body("songs/a.csv", long_id), headers=HEADERS
        )
        assert answer.status_code == 202, answer.text
        accepted = answer.json()["accepted"]
        again = client.post(
            "/webhooks/storage", content=body("songs/a.csv", long_id), headers=HEADERS
        )
        assert again.status_code in (200, 202), again.text
        for n in range(10):
            reply = client.post(
                "/webhooks/storage", content=body(f"songs/b-{n}.csv"), headers=HEADERS
            )
            assert reply.status_code == 202, reply.text
            accepted += reply.json()["accepted"]
        reply = client.post("/webhooks/storage", content=body(folder + "x.csv"), headers=HEADERS)
        assert reply.status_code == 202, reply.text
        accepted += reply.json()["accepted"]
        nul_id = client.post(
            "/webhooks/storage", content=body("songs/c.csv", "req-\x00"), headers=HEADERS
        )
        assert nul_id.status_code == 400 and "cannot be stored" in nul_id.text, nul_id.text
        poisoned = client.post(
            "/webhooks/storage", content=body("songs/nul\x00.csv"), headers=HEADERS
        )
        # PostgreSQL text cannot hold NUL: this event's decision can never be recorded.
        assert poisoned.status_code in (202, 400), poisoned.text
    services.worker.run_until_idle()
    with services.engine.connect() as conn:
        statuses = dict(conn.execute(select(events.c.id, events.c.status)).all())
        stored_id = conn.execute(
            select(events.c.delivery_id).where(events.c.id == accepted[0])
        ).scalar_one()
        scopes = conn.execute(select(decisions.c.scope).where(decisions.c.state == "collecting"))
        scopes = [s for (s,) in scopes]
    assert {statuses[i] for i in accepted} == {"decided"}, statuses
    if poisoned.status_code == 202:  # dead-lettered alone, with its reason
        (bad,) = poisoned.json()["accepted"]
        with services.engine.connect() as conn:
            row = conn.execute(select(events).where(events.c.id == bad)).one()
        assert row.status == "dead" and "NUL" in row.last_error
    assert len(stored_id) == 256 and stored_id.startswith("req-777")
    assert len(scopes) == 2, scopes  # the songs/ folder, and the long one
    long_scope = next(s for s in scopes if "fff" in s)
    assert len(long_scope) == 256 and "~sha256:" in long_scope


def test_postgres_down_answers_503_quickly_and_fails_readiness(
    build: Build, postgres: PostgresCluster
) -> None:
    import time

    from tests.support.postgres import _as_owner, _run

    services = build(database_url=postgres.url, store_timeout_seconds=2.0)
    with TestClient(create_app(services, start_worker=False)) as client:
        assert client.post("/webhooks/storage", content=body("songs/a.csv"), headers=HEADERS)
        assert client.get("/readyz").status_code == 200
        owner = "postgres" if postgres.root.owner() == "postgres" else None
        stop = [str(postgres.bindir / "pg_ctl"), "-D", str(postgres.root / "data")]
        # fast: the test cluster runs with synchronous_commit=off, an immediate stop loses commits
        _run(_as_owner(owner, [*stop, "-m", "fast", "-w", "stop"]), "pg_ctl stop")
        started = time.monotonic()
        answer = client.post("/webhooks/storage", content=body("songs/b.csv"), headers=HEADERS)
        assert time.monotonic() - started < 10
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["retry-after"]) >= 1
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "OperationalError" in ready.json()["checks"]["store"]
        start = [*stop, "-l", str(postgres.log_path), "-w", "start"]
        _run(_as_owner(owner, start), "pg_ctl start")
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.get("/readyz").status_code == 200
        again = client.post("/webhooks/storage", content=body("songs/b.csv"), headers=HEADERS)
        assert again.status_code == 202
