"""The worker submitting through the real kfp.Client to the KFP v2beta1 REST double.

The KFP API server cannot run here; tests/support/kfp_double.py is faithful to its shapes.
Shown: KFP unavailable for a while delays runs and loses none; a 403 dead-letters with KFP's
message; a crash between submit and record resubmits nothing; run states are followed.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.service.conftest import FakeClock
from tests.support.kfp_double import KfpDouble
from tests.support.repo import GitRepo, rules_text
from tests.support.tiny_pipeline import compile_tiny
from trigger_service.database import decisions, runs
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
