"""SIGKILL mid-submission with a short lease: the decision in flight resumes within the lease
(not after a hidden floor of compile timeout + 300 s), the decisions never started were never
claimed, and reconciling by run name makes no second run.

Real `serve` processes (kfp backend, SQLite) against the KFP v2beta1 REST double; the double
holds the first run creation until the service has been killed, then creates it, as a KFP that
received the POST would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.support.kfp_double import KfpDouble
from tests.support.repo import GitRepo, rules_text
from tests.support.server import start_service
from tests.support.tiny_pipeline import compile_tiny
from trigger_service.database import decisions

LEASE = 4.0


@pytest.fixture
def kfp() -> Iterator[KfpDouble]:
    with KfpDouble() as double:
        yield double


def states(database: Path) -> Counter[str]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return Counter(
                conn.execute(
                    select(decisions.c.state).where(decisions.c.outcome == "run")
                ).scalars()
            )
    finally:
        engine.dispose()


def test_sigkill_mid_submission_resumes_within_the_lease(tmp_path: Path, kfp: KfpDouble) -> None:
    package = compile_tiny(tmp_path / "compiled.yaml")
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": package.read_text()}, "compiled pipeline")
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(repo.url, concurrency="parallel"))
    database = tmp_path / "trigger.db"
    env = {
        "TRIGGER_DATABASE_URL": f"sqlite:///{database}",
        "TRIGGER_RULES_PATH": str(rules),
        "TRIGGER_BACKEND": "kfp",
        "TRIGGER_KFP_HOST": kfp.url,
        "TRIGGER_KFP_TOKEN": "sa-token",
        "TRIGGER_KFP_POLL_SECONDS": "1",
        "TRIGGER_MANUAL_TOKEN": "manual-token",
        "TRIGGER_CLAIM_LEASE_SECONDS": str(LEASE),
        "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
        "TRIGGER_LOG_JSON": "false",
    }
    entered, release = threading.Event(), threading.Event()

    def hold(_request: object) -> None:
        entered.set()
        release.wait(60)

    kfp.before_next("POST", "/apis/v2beta1/runs", hold)
    first = start_service(env, tmp_path / "first.log")
    try:
        for n in range(3):
            answer = httpx.post(
                f"{first.url}/trigger",
                json={"pipeline": "songs"},
                headers={"Authorization": "Bearer manual-token", "Idempotency-Key": f"k-{n}"},
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
        assert entered.wait(60), "the first run creation never reached KFP"
        in_flight = states(database)
        first.kill()
    finally:
        first.stop()
        release.set()  # KFP goes on and creates the run the dead process asked for
    # Claimed one at a time: whatever else was decided by then waits `ready`, unclaimed.
    assert in_flight["submitting"] == 1 and set(in_flight) <= {"submitting", "ready"}, in_flight

    restarted_at = time.monotonic()
    second = start_service(env, tmp_path / "second.log")
    try:
        deadline = restarted_at + LEASE + 20  # the lease, plus start-up on a loaded machine
        while states(database)["submitted"] < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        took = time.monotonic() - restarted_at
        final = states(database)
    finally:
        second.stop()
    assert final["submitted"] == 3, f"after {took:.1f} s: {final}"
    names = Counter(run["display_name"] for run in kfp.runs.values())
    assert len(names) == 3 and set(names.values()) == {1}, names  # no run made twice
    print(f"\nall 3 decisions submitted {took:.1f} s after the restart (lease {LEASE:.0f} s)")
