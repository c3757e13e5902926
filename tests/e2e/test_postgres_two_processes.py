"""Two `serve` processes sharing one real PostgreSQL take a storm between them and still make
exactly one run decision, and every event is decided exactly once.

Everything is real: Debian's PostgreSQL started by the test on loopback, two service processes
(HTTP + worker thread each, claiming with FOR UPDATE SKIP LOCKED), a git repository holding the
pipeline, and the shadow backend (records the run, submits nothing).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select

from demo.payloads import storage_event
from tests.support.postgres import PostgresCluster, find_postgres_bin, postgres_cluster
from tests.support.repo import GitRepo, rules_text
from tests.support.server import ServiceProcess, start_service
from trigger_service.database import decision_events, decisions, events, runs

pytestmark = pytest.mark.slow

STORM = 1500  # object-created events, one prefix
SENDERS = 8  # client threads, alternating between the two processes
DEBOUNCE_SECONDS = 6.0  # longer than any pause in the storm on a loaded 2-core runner
MAX_WAIT_SECONDS = 120.0  # far beyond the storm: only the debounce may fire the decision
SETTLE_TIMEOUT = 90.0
TOKEN = "storage-token"


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    bindir = find_postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
        )
    with postgres_cluster(bindir) as cluster:
        yield cluster


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def grouped(engine: Engine, column: Any) -> dict[Any, int]:
    """{value: rows} for one column (e.g. events by status)."""
    with engine.connect() as conn:
        rows = conn.execute(select(column, func.count()).group_by(column)).all()
    return {value: int(n) for value, n in rows}


def send_storm(ports: list[int]) -> tuple[list[str], list[str], float]:
    """POST STORM MinIO notifications from SENDERS threads; (accepted ids, problems, seconds)."""
    accepted: list[str] = []
    problems: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def sender(index: int) -> None:
        with httpx.Client(timeout=30.0) as client:
            for i in range(index, STORM, SENDERS):
                port = ports[i % len(ports)]
                body = json.dumps(storage_event("datasets", f"songs/part-{i:05d}.csv", 100 + i))
                try:
                    response = client.post(
                        f"http://127.0.0.1:{port}/webhooks/storage", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    with lock:
                        problems.append(f"event {i} to :{port}: {exc!r}")
                    continue
                with lock:
                    if response.status_code == 202:
                        accepted.extend(response.json()["accepted"])
                    else:
                        problems.append(
                            f"event {i} to :{port}: {response.status_code} {response.text[:200]}"
                        )

    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(sender, range(SENDERS)))
    return accepted, problems, time.monotonic() - started


def settled(engine: Engine, expected: int) -> bool:
    """Every event decided and no run decision left on its way to the backend."""
    with engine.connect() as conn:
        decided = conn.execute(
            select(func.count()).select_from(events).where(events.c.status == "decided")
        ).scalar()
        moving = conn.execute(
            select(func.count())
            .select_from(decisions)
            .where(decisions.c.state.in_(["collecting", "ready", "submitting", "queued"]))
        ).scalar()
    return decided == expected and moving == 0


def test_two_processes_share_a_storm_and_make_one_run(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled pipeline v1\n"}, "init")
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(
        rules_text(repo.url, debounce=DEBOUNCE_SECONDS, max_wait=MAX_WAIT_SECONDS)
    )

    def env(name: str) -> dict[str, str]:
        return {
            "TRIGGER_DATABASE_URL": postgres.url,
            "TRIGGER_RULES_PATH": str(rules_path),
            "TRIGGER_BACKEND": "shadow",
            "TRIGGER_STORAGE_TOKEN": TOKEN,
            "TRIGGER_GIT_CACHE_DIR": str(tmp_path / name / "git-cache"),
            "TRIGGER_RUNS_DIR": str(tmp_path / name / "runs"),
            "TRIGGER_MODELS_ROOT": str(tmp_path / name / "models"),
        }

    # Both start at once against the empty database, as two replicas of a Deployment would.
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(start_service, env(n), tmp_path / n / "service.log") for n in ("a", "b")
        ]
    services: list[ServiceProcess] = []
    errors = []
    for future in futures:
        try:
            services.append(future.result())
        except Exception as exc:
            errors.append(exc)
    engine = create_engine(postgres.url)
    try:
        assert not errors, f"a service did not start: {errors}"

        accepted, problems, seconds = send_storm([s.port for s in services])
        assert not problems, f"{len(problems)} deliveries not answered 202, e.g. {problems[:5]}"
        assert len(accepted) == STORM == len(set(accepted)), "every delivery is one new event"
        assert seconds < MAX_WAIT_SECONDS, f"the storm took {seconds:.1f} s, over max_wait"

        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not settled(engine, STORM) and time.monotonic() < deadline:
            time.sleep(0.25)
        statuses = grouped(engine, events.c.status)
        states = grouped(engine, decisions.c.state)
        assert settled(engine, STORM), (
            f"not settled after {SETTLE_TIMEOUT:.0f} s: events by status {statuses}, "
            f"decisions by state {states}"
        )

        with engine.connect() as conn:
            run_decisions = conn.execute(
                select(decisions).where(decisions.c.outcome == "run")
            ).all()
            recorded_runs = conn.execute(select(runs)).all()
        all_decisions = count(engine, decisions)
        linked = grouped(engine, decision_events.c.event_id)  # event id -> decisions it is in
        claimers = grouped(engine, events.c.claimed_by)  # worker id -> events it claimed
        attempts = grouped(engine, events.c.attempts)  # claims per event -> events
        print(f"\nstorm of {STORM} events sent in {seconds:.1f} s; claims by worker: {claimers}")

        assert statuses == {"decided": STORM}, f"events by status: {statuses}"
        assert attempts == {1: STORM}, f"events by times claimed (1 expected): {attempts}"
        assert len(run_decisions) == 1, (
            f"{len(run_decisions)} run decisions for one storm: "
            f"{[(d.id, d.state, d.event_count) for d in run_decisions]}"
        )
        (decision,) = run_decisions
        assert all_decisions == 1, f"{all_decisions} decisions in all, states {states}"
        # A shadow run is recorded at once; its decision follows when the run is next polled.
        assert decision.state in ("submitted", "recorded"), decision.state
        assert decision.event_count == STORM, decision.event_count
        assert set(linked) == set(accepted), (
            f"{len(set(accepted) - set(linked))} accepted events in no decision, "
            f"{len(set(linked) - set(accepted))} unknown events linked"
        )
        twice = {e: n for e, n in linked.items() if n != 1}
        assert not twice, f"{len(twice)} events decided more than once, e.g. {list(twice)[:3]}"
        assert count(engine, decision_events, decision_events.c.decision_id == decision.id) == STORM

        assert len(recorded_runs) == 1, f"{len(recorded_runs)} runs recorded for one decision"
        (run,) = recorded_runs
        assert run.decision_id == decision.id
        assert run.backend == "shadow"
        assert run.state in ("pending", "recorded") and (
            decision.state != "recorded" or run.state == "recorded"
        ), (run.state, decision.state)
        assert run.params["data_uri"].startswith("s3://datasets/songs/part-"), run.params

        # The work was shared: both processes' workers claimed part of the storm.
        assert None not in claimers, f"events never claimed: {claimers}"
        assert len(claimers) == 2, f"claims by worker: {claimers}"
        for service in services:
            assert service.alive(), f"service on :{service.port} died:\n{service.log()[-2000:]}"
            assert not service.error_lines(), (
                f"service on :{service.port} logged errors: {service.error_lines()[:5]}"
            )
    finally:
        engine.dispose()
        for service in services:
            service.stop()
