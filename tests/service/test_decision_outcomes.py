"""What a decision says after the fact: it ends in its run's state, it keeps every event's own
reason when causes coalesce or merge, and a shadow run is `recorded`, not `succeeded`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from tests.service.conftest import Build, FakeClock
from tests.service.test_worker import data_event, manual_event, settle
from tests.support.backends import PERMANENT, ScriptedBackend
from tests.support.postgres import find_postgres_bin, postgres_cluster
from tests.support.repo import GitRepo, rules_text
from trigger_service.database import create_schema, decision_events, make_engine, metadata
from trigger_service.events import DriftSubject, Event, EventKind
from trigger_service.service import Services
from trigger_service.submit.base import RunState
from trigger_service.submit.shadow import ShadowBackend
from trigger_service.tracking.runs import get_run, run_dict
from trigger_service.worker.queries import get_decision

POLL = 11  # past kfp_poll_seconds (10): the worker polls run states


def decision_of(services: Services, event_id: str) -> dict[str, Any]:
    with services.engine.connect() as conn:
        decision_id = conn.execute(
            select(decision_events.c.decision_id).where(decision_events.c.event_id == event_id)
        ).scalar_one()
        found = get_decision(conn, decision_id)
    assert found is not None
    return found


def drift_event(clock: FakeClock, event_id: str = "alertmanager-drift-1") -> Event:
    subject = DriftSubject(
        "ModelDrift",
        "firing",
        labels={"alertname": "ModelDrift", "model": "songs"},
        fingerprint="f1",
        starts_at="2026-11-25T09:00:00Z",
    )
    return Event(event_id, EventKind.DRIFT, "alertmanager", subject, clock.datetime())


@pytest.mark.parametrize(
    ("run_state", "decision_state"),
    [
        (RunState.SUCCEEDED, "succeeded"),
        (RunState.FAILED, "failed"),
        (RunState.CANCELED, "canceled"),
    ],
)
def test_a_decision_ends_in_its_runs_final_state(
    build: Build,
    clock: FakeClock,
    backend: ScriptedBackend,
    run_state: RunState,
    decision_state: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = build()
    services.inbox.store([manual_event(clock, "manual-1")])
    settle(services, clock, 1)
    assert decision_of(services, "manual-1")["state"] == "submitted"
    backend.states["ext-1"] = RunState.RUNNING
    settle(services, clock, POLL)
    assert decision_of(services, "manual-1")["state"] == "submitted"  # still running

    backend.finish_all(run_state)
    with caplog.at_level(logging.INFO, logger="trigger_service.tracking.poller"):
        settle(services, clock, POLL)
    decision = decision_of(services, "manual-1")
    assert decision["state"] == decision_state
    (logged,) = [r for r in caplog.records if r.getMessage() == f"run {decision_state}"]
    assert logged.run_id == decision["run_id"]  # type: ignore[attr-defined]
    with services.engine.connect() as conn:
        assert get_run(conn, decision["run_id"]).state == decision_state


def test_a_dead_lettered_decision_stays_dead(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    backend.fail_next_submits.append(PERMANENT)
    services.inbox.store([manual_event(clock, "manual-1")])
    settle(services, clock, 1)
    decision = decision_of(services, "manual-1")
    assert decision["state"] == "dead"
    with services.engine.connect() as conn:
        assert get_run(conn, decision["run_id"]).state == "failed"


def test_a_drift_alert_merged_into_a_queued_data_run_keeps_its_own_reason(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    services.inbox.store([manual_event(clock, "manual-1")])  # a run in progress
    settle(services, clock, 1)
    backend.states["ext-1"] = RunState.RUNNING

    services.inbox.store([data_event(clock, "songs/new.csv")])
    settle(services, clock)
    settle(services, clock, 31)  # debounce over: queued behind the running run
    assert decision_of(services, "storage-songs/new.csv")["state"] == "queued"
    services.inbox.store([drift_event(clock)])
    settle(services, clock, 1)  # queue-one: folded into the queued data decision

    queued = decision_of(services, "alertmanager-drift-1")
    assert queued["state"] == "queued"
    own = {e["id"]: (e["trigger"], e["reason"]) for e in queued["events"]}
    assert own == {
        "storage-songs/new.csv": ("new-data", "new object s3://datasets/songs/new.csv"),
        "alertmanager-drift-1": ("drift", "alert ModelDrift firing (model=songs)"),
    }
    assert queued["reason"] == (
        "new-data: new object s3://datasets/songs/new.csv; "
        "drift: alert ModelDrift firing (model=songs)"
    )

    backend.finish_all()
    settle(services, clock, POLL)
    assert backend.submit_calls == 2
    follow_up = backend.runs["ext-2"]
    assert follow_up.params["trigger_reason"] == queued["reason"]
    assert set(follow_up.params["event_ids"].split(",")) == set(own)


def test_one_trigger_keeps_its_rendered_trigger_reason_and_counts_a_burst(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo
) -> None:
    rules = rules_text(repo.url).replace(
        '      data_uri: "{subject.uri}"',
        '      data_uri: "{subject.uri}"\n      trigger_reason: "new data {subject.key}"',
    )
    services = build(rules=rules)
    services.inbox.store([data_event(clock, f"songs/{i}.csv") for i in range(3)])
    settle(services, clock)
    settle(services, clock, 31)
    assert backend.runs["ext-1"].params["trigger_reason"] == "new data songs/2.csv"
    decision = decision_of(services, "storage-songs/0.csv")
    assert [e["reason"] for e in decision["events"]] == [
        f"new object s3://datasets/songs/{i}.csv" for i in range(3)
    ]

    services.inbox.store([manual_event(clock, "manual-2")])
    backend.finish_all()
    settle(services, clock, POLL)
    manual_run = backend.runs["ext-2"]
    assert manual_run.params["trigger_reason"].startswith("by-hand: ")


def test_shadow_runs_are_recorded_not_succeeded(
    build: Build, clock: FakeClock, tmp_path: Path
) -> None:
    base = build()
    services = Services.build(base.settings, backend=ShadowBackend(), clock=clock)
    services.inbox.store([manual_event(clock, "manual-1")])
    settle(services, clock, 1)
    settle(services, clock, POLL)
    decision = decision_of(services, "manual-1")
    assert decision["state"] == "recorded"
    with services.engine.connect() as conn:
        run = run_dict(conn, get_run(conn, decision["run_id"]))
    assert run["state"] == "recorded" and run["backend"] == "shadow"
    assert [s["state"] for s in run["states"]] == ["submitting", "pending", "recorded"]
    assert run["finished_at"] is not None


POSTGRES_BIN = find_postgres_bin()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if POSTGRES_BIN is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with postgres_cluster(POSTGRES_BIN) as cluster:
        yield cluster.url


def test_a_store_made_before_per_event_reasons_gets_the_new_columns(store_url: str) -> None:
    engine = make_engine(store_url)
    old = metadata.tables["decision_events"]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE decision_events (decision_id VARCHAR(64), event_id VARCHAR(128), "
            "at FLOAT NOT NULL, PRIMARY KEY (decision_id, event_id))"
        )
        conn.exec_driver_sql("INSERT INTO decision_events VALUES ('d-1', 'e-1', 1.0)")
    create_schema(engine)
    create_schema(engine)  # twice: nothing left to add
    with engine.connect() as conn:
        row = conn.execute(select(old)).one()
    assert (row.decision_id, row.trigger, row.reason) == ("d-1", None, None)
    with engine.begin() as conn:  # and the new columns take values
        conn.execute(old.update().values(trigger="drift", reason="alert ModelDrift firing"))
    engine.dispose()


@pytest.mark.slow
def test_processes_upgrading_one_sqlite_store_at_once_all_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.server import REPO_ROOT

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with make_engine(url).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE decision_events (decision_id VARCHAR(64), event_id VARCHAR(128), "
            "at FLOAT NOT NULL, PRIMARY KEY (decision_id, event_id))"
        )
    code = (
        "from trigger_service.database import create_schema, make_engine; "
        f"create_schema(make_engine({url!r}))"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in starts]
    assert [p.returncode for p in starts] == [0] * 4, errors
    columns = {c["name"] for c in inspect(make_engine(url)).get_columns("decision_events")}
    assert {"trigger", "reason"} <= columns
