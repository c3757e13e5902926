"""No decision can wedge a pipeline: unexpected errors retry then dead-letter, a submission that
kills its process every time dead-letters after max_attempts leases, and later runs go on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.service.conftest import Build, FakeClock
from tests.support.backends import ScriptedBackend
from trigger_service.database import decisions
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.service import Services


def manual(clock: FakeClock, event_id: str, version: str | None = None) -> Event:
    subject = ManualSubject("songs", version)
    return Event(event_id, EventKind.MANUAL, "manual", subject, clock.datetime())


def states(services: Services) -> dict[str, tuple[str, str | None, int]]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(decisions).where(decisions.c.outcome == "run")).all()
    covered = {}
    for row in rows:
        covered[row.id] = (row.state, row.last_error, row.attempts)
    return covered


def test_an_unexpected_error_retries_then_dead_letters_and_the_next_run_goes(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build(max_attempts=3)
    backend.fail_next_submits = [ValueError("embedded null byte")] * 3
    services.inbox.store([manual(clock, "manual-bad")])
    services.worker.run_until_idle()
    ((state, error, attempts),) = states(services).values()
    assert state == "ready" and "unexpected error" in (error or "") and attempts == 1
    for _ in range(3):
        clock.advance(600)
        services.worker.run_until_idle()
    ((state, error, attempts),) = states(services).values()
    assert state == "dead" and attempts == 3
    assert "gave up after 3 attempts" in (error or "") and "embedded null byte" in (error or "")
    assert services.inbox.get("manual-bad")["status"] == "dead"

    services.inbox.store([manual(clock, "manual-next")])
    services.worker.run_until_idle()
    assert len(backend.runs) == 1, "the pipeline is not wedged behind the dead decision"


def test_a_stored_version_refused_by_todays_checks_dead_letters_at_once(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    # Stored before the edge checked versions: it must not reach git, nor wedge the pipeline.
    services.inbox.store([manual(clock, "manual-old", version="--upload-pack=touch /tmp/x")])
    services.worker.run_until_idle()
    ((state, error, _attempts),) = states(services).values()
    assert state == "dead" and "version" in (error or "") and "starts with '-'" in (error or "")


def test_a_submission_that_kills_its_process_each_time_dead_letters_after_its_leases(
    build: Build, clock: FakeClock, backend: ScriptedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build(max_attempts=2)

    def dies(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt("the process died while submitting")

    monkeypatch.setattr(services.worker.submitter.versions, "resolve", dies)
    services.inbox.store([manual(clock, "manual-dies")])
    lease = services.worker.submitter.lease_seconds
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            services.worker.run_until_idle()
        ((state, _error, _attempts),) = states(services).values()
        assert state == "submitting"
        clock.advance(lease + 1)  # nobody finishes it: the lease runs out
    services.worker.run_until_idle()
    ((state, error, attempts),) = states(services).values()
    assert state == "dead" and attempts == 3 and "never finished" in (error or "")
