"""The worker submitting through the real kfp.Client to the KFP v2beta1 REST double.

The KFP API server cannot run here; tests/support/kfp_double.py is faithful to its shapes.
Shown: KFP unavailable for a while delays runs and loses none; a 403 dead-letters with KFP's
message; a crash between submit and record resubmits nothing; run states are followed.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.service.conftest import FakeClock
from tests.support.kfp_double import KfpDouble
from tests.support.repo import GitRepo, rules_text
from tests.support.tiny_pipeline import compile_tiny
from trigger_service.database import decisions, pipeline_versions, runs
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.service import Services
from trigger_service.settings import Settings
from trigger_service.submit.kfp_remote import KfpBackend
from trigger_service.tracking import runs as tracked


@pytest.fixture
def kfp() -> Iterator[KfpDouble]:
    with KfpDouble() as double:
        yield double


@pytest.fixture
def services(tmp_path: Path, repo: GitRepo, clock: FakeClock, kfp: KfpDouble) -> Services:
    package = tmp_path / "compiled.yaml"
    compile_tiny(package)
    repo.commit({"pipeline.yaml": package.read_text()}, "compiled pipeline")
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(repo.url))
    token = tmp_path / "token"
    token.write_text("sa-token-1")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
        rules_path=rules,
        backend="kfp",
        kfp_host=kfp.url,
        kfp_token_path=token,
        git_cache_dir=tmp_path / "git-cache",
        retry_base_seconds=1.0,
        retry_max_seconds=30.0,
        max_attempts=20,
    )
    return Services.build(settings, backend=KfpBackend.from_settings(settings), clock=clock)


def manual(clock: FakeClock, n: int) -> Event:
    return Event(
        f"manual-{n}", EventKind.MANUAL, "manual", ManualSubject("songs"), clock.datetime()
    )


def settle(services: Services, clock: FakeClock, seconds: float = 0.0) -> None:
    clock.advance(seconds)
    services.worker.run_until_idle()


def rows(services: Services, table) -> list[dict]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]


def test_kfp_unavailable_for_a_while_delays_runs_and_loses_none(
    tmp_path: Path, services: Services, clock: FakeClock, kfp: KfpDouble
) -> None:
    (tmp_path / "rules.yaml").write_text(
        rules_text(services.rules().pipelines[0].source.repository, concurrency="parallel")
    )
    kfp.fail_next(4, status=503)
    services.inbox.store([manual(clock, n) for n in range(3)])
    settle(services, clock)
    assert not kfp.runs, "nothing reached KFP yet"
    assert any("503" in (d["last_error"] or "") for d in rows(services, decisions))

    kfp.refuse_connections()
    settle(services, clock, 60)
    assert not kfp.runs
    kfp.accept_connections()
    for _ in range(10):
        settle(services, clock, 60)
    assert len(kfp.runs) == 3, "every decision became exactly one run"
    names = sorted(run["display_name"] for run in kfp.runs.values())
    assert names == sorted(r["run_name"] for r in rows(services, runs))
    posted = kfp.requests_to("POST", "/apis/v2beta1/runs")
    body = next(r for r in posted if r.status == 200).json
    assert body["pipeline_version_reference"]["pipeline_version_id"] in kfp.versions
    assert body["runtime_config"]["parameters"]["data_uri"] == "s3://datasets/songs/songs.csv"
    assert posted[-1].headers["authorization"] == "Bearer sa-token-1"


def test_403_dead_letters_with_kfp_message(
    services: Services, clock: FakeClock, kfp: KfpDouble
) -> None:
    kfp.deny("user system:serviceaccount:ml:trigger cannot create runs in namespace ml")
    services.inbox.store([manual(clock, 1)])
    settle(services, clock)
    (decision,) = [d for d in rows(services, decisions) if d["outcome"] == "run"]
    assert decision["state"] == "dead"
    assert "cannot create runs" in decision["last_error"]
    event = services.inbox.get("manual-1")
    assert event is not None and event["status"] == "dead"
    assert "cannot create runs" in event["last_error"]


def test_crash_between_submit_and_record_resubmits_nothing(
    services: Services, clock: FakeClock, kfp: KfpDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tracked.set_state

    def crash(conn, run_id, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        if state == "pending":
            raise KeyboardInterrupt("killed after KFP accepted the run")
        return real(conn, run_id, state, *args, **kwargs)

    monkeypatch.setattr(tracked, "set_state", crash)
    services.inbox.store([manual(clock, 1)])
    with pytest.raises(KeyboardInterrupt):
        services.worker.run_until_idle()
    monkeypatch.setattr(tracked, "set_state", real)
    assert len(kfp.runs) == 1

    restarted = Services.build(
        services.settings, backend=KfpBackend.from_settings(services.settings), clock=clock
    )
    settle(restarted, clock, restarted.worker.submitter.lease_seconds + 1)
    assert len(kfp.runs) == 1
    (run,) = rows(restarted, runs)
    assert run["external_id"] == next(iter(kfp.runs)) and run["state"] == "pending"


def test_run_states_followed_until_a_failed_gate(
    services: Services, clock: FakeClock, kfp: KfpDouble
) -> None:
    services.inbox.store([manual(clock, 1)])
    settle(services, clock)
    run_id = next(iter(kfp.runs))
    kfp.advance_run(run_id, "RUNNING")
    settle(services, clock, 11)
    kfp.advance_run(
        run_id, "FAILED", failed_task="evaluate", error="accuracy 0.41 is below the threshold 0.9"
    )
    settle(services, clock, 11)
    (run,) = rows(services, runs)
    assert run["state"] == "failed"
    assert run["failed_step"] == "evaluate"
    assert "threshold" in run["error"]
    with services.engine.connect() as conn:
        states = [
            s["state"] for s in tracked.run_dict(conn, tracked.get_run(conn, run["id"]))["states"]
        ]
    assert states == ["submitting", "pending", "running", "failed"]


def delete(kfp: KfpDouble, path: str) -> None:
    """What someone cleaning up in the KFP UI does: a real DELETE on the API."""
    answer = httpx.delete(f"{kfp.url}/apis/v2beta1/{path}", timeout=10)
    assert answer.status_code == 200, answer.text


def test_a_run_deleted_in_kfp_ends_lost_and_frees_its_pipeline(
    services: Services, clock: FakeClock, kfp: KfpDouble
) -> None:
    services.inbox.store([manual(clock, 1)])  # queue-one: the next decision waits for this run
    settle(services, clock)
    (first,) = kfp.runs
    services.inbox.store([manual(clock, 2)])
    settle(services, clock)
    assert {d["state"] for d in rows(services, decisions) if d["outcome"] == "run"} == {
        "submitted",
        "queued",
    }
    delete(kfp, f"runs/{first}")
    settle(services, clock, 11)  # the poll meets a 404
    settle(services, clock, 1)
    lost = next(r for r in rows(services, runs) if r["external_id"] == first)
    assert lost["state"] == "lost" and "404" in lost["error"]
    assert lost["finished_at"] is not None
    assert len(kfp.runs) == 1 and first not in kfp.runs, "the queued decision ran"


def test_a_version_deleted_in_kfp_is_uploaded_again_from_the_stored_package(
    services: Services, clock: FakeClock, kfp: KfpDouble
) -> None:
    services.inbox.store([manual(clock, 1)])
    settle(services, clock)
    (run,) = kfp.runs.values()
    version = run["pipeline_version_reference"]
    uploaded = kfp.packages[version["pipeline_version_id"]]
    kfp.advance_run(run["run_id"], "SUCCEEDED")
    settle(services, clock, 11)
    delete(kfp, f"pipelines/{version['pipeline_id']}/versions/{version['pipeline_version_id']}")

    services.inbox.store([manual(clock, 2)])  # runs the current version: gone from KFP
    settle(services, clock, 1)
    assert len(kfp.runs) == 2, [d["last_error"] for d in rows(services, decisions)]
    second = next(r for r in kfp.runs.values() if r["run_id"] != run["run_id"])
    again = second["pipeline_version_reference"]["pipeline_version_id"]
    assert again != version["pipeline_version_id"] and kfp.packages[again] == uploaded
    (stored,) = rows(services, pipeline_versions)
    assert stored["backend_version_id"] == again
    assert kfp.versions[again]["display_name"] == stored["version"]  # the same commit


def test_a_crash_strands_only_the_decision_in_flight_for_one_lease(
    tmp_path: Path, services: Services, clock: FakeClock, kfp: KfpDouble, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "rules.yaml").write_text(
        rules_text(services.rules().pipelines[0].source.repository, concurrency="parallel")
    )
    real = tracked.set_state

    def crash(conn, run_id, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        if state == "pending":
            raise KeyboardInterrupt("killed after KFP accepted the run")
        return real(conn, run_id, state, *args, **kwargs)

    monkeypatch.setattr(tracked, "set_state", crash)
    services.inbox.store([manual(clock, n) for n in range(3)])
    with pytest.raises(KeyboardInterrupt):
        services.worker.run_until_idle()
    monkeypatch.setattr(tracked, "set_state", real)
    states = sorted(d["state"] for d in rows(services, decisions) if d["outcome"] == "run")
    assert states == ["ready", "ready", "submitting"], "only the one in flight is claimed"

    restarted = Services.build(
        services.settings, backend=KfpBackend.from_settings(services.settings), clock=clock
    )
    lease = services.settings.claim_lease_seconds
    assert restarted.worker.submitter.lease_seconds == lease  # no hidden floor
    settle(restarted, clock, lease - 1)
    assert len(kfp.runs) == 3  # the two never started went at once; the third was in KFP
    stranded = [d for d in rows(restarted, decisions) if d["state"] == "submitting"]
    assert len(stranded) == 1
    settle(restarted, clock, 2)  # one lease after the crash, it resumes (and reconciles)
    assert {d["state"] for d in rows(restarted, decisions) if d["outcome"] == "run"} == {
        "submitted"
    }
    assert len(kfp.runs) == 3


def test_a_long_submission_extends_its_own_lease(services: Services) -> None:
    import time

    from trigger_service.database import write
    from trigger_service.leases import kept_lease

    with write(services.engine) as conn:
        conn.execute(
            decisions.insert().values(
                id="d-1",
                created_at=0,
                updated_at=0,
                outcome="run",
                state="submitting",
                reason="test",
                claimed_by="me",
                lease_until=time.time() + 0.6,
            )
        )

    def lease_until() -> float:
        with services.engine.connect() as conn:
            return float(
                conn.execute(
                    select(decisions.c.lease_until).where(decisions.c.id == "d-1")
                ).scalar_one()
            )

    first = lease_until()
    with kept_lease(services.engine, decisions, "d-1", "me", 0.6, time.time):
        time.sleep(1.5)  # a compile longer than two leases
        during = lease_until()
    assert during > first + 0.5, "the lease moved forward while the work went on"
    time.sleep(0.5)
    assert lease_until() == pytest.approx(during, abs=0.3), "no extension after the block"
