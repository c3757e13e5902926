"""The worker end to end over a real SQLite store, a real git repository and a fake clock:
decisions, coalescing, concurrency, GitOps versions, retries and dead letters. (A crash between
submit and record: tests/service/test_kfp_submission.py, through the real kfp.Client.)"""

from __future__ import annotations

from sqlalchemy import func, select

from tests.service.conftest import Build, FakeClock
from tests.support import alerts
from tests.support.backends import PERMANENT, TEMPORARY, ScriptedBackend
from tests.support.repo import GitRepo, rules_text
from trigger_service.database import decision_events, decisions, runs
from trigger_service.events import CodeSubject, DataSubject, Event, EventKind, ManualSubject
from trigger_service.service import Services
from trigger_service.sources import SOURCES
from trigger_service.submit.base import RunState
from trigger_service.tracking import runs as tracked


def data_event(clock: FakeClock, key: str, event_id: str | None = None) -> Event:
    subject = DataSubject("datasets", key, "s3:ObjectCreated:Put", size=10, sequencer=key)
    return Event(event_id or f"storage-{key}", EventKind.DATA, "storage", subject, clock.datetime())


def push_event(clock: FakeClock, repo: GitRepo, sha: str, paths: list[str]) -> Event:
    subject = CodeSubject(
        repository=repo.url,
        repository_name="team/songs",
        ref="refs/heads/main",
        branch="main",
        tag=None,
        before="0" * 40,
        after=sha,
        changed_paths=tuple(paths),
    )
    return Event(f"github-{sha}", EventKind.CODE, "github", subject, clock.datetime())


def manual_event(clock: FakeClock, event_id: str, version: str | None = None) -> Event:
    return Event(
        event_id, EventKind.MANUAL, "manual", ManualSubject("songs", version), clock.datetime()
    )


def run_decisions(services: Services) -> list[dict]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(decisions).where(decisions.c.outcome == "run")).all()
    return [dict(r._mapping) for r in rows]


def count(services: Services, table, *where) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def settle(services: Services, clock: FakeClock, seconds: float = 0.0) -> None:
    clock.advance(seconds)
    services.worker.run_until_idle()


def test_storm_is_one_run_and_a_burst_during_it_one_follow_up(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    services.inbox.store([data_event(clock, f"songs/part-{i:04d}.csv") for i in range(2000)])
    settle(services, clock)
    assert backend.submit_calls == 0, "the debounce window is still open"
    settle(services, clock, 31)

    (first,) = run_decisions(services)
    assert first["state"] == "submitted"
    assert first["event_count"] == 2000
    assert count(services, decision_events, decision_events.c.decision_id == first["id"]) == 2000
    assert backend.submit_calls == 1
    assert services.inbox.depth()["decided"] == 2000

    # Two more bursts while the first run is active: one queued follow-up covers both.
    backend.states["ext-1"] = RunState.RUNNING
    for burst in range(2):
        services.inbox.store([data_event(clock, f"songs/b{burst}-{i:03d}.csv") for i in range(300)])
        settle(services, clock)
        settle(services, clock, 31)
    queued = [d for d in run_decisions(services) if d["state"] == "queued"]
    assert len(queued) == 1
    assert count(services, decision_events, decision_events.c.decision_id == queued[0]["id"]) == 600
    assert backend.submit_calls == 1

    backend.finish_all()
    settle(services, clock, 2)
    assert backend.submit_calls == 2
    second = backend.runs["ext-2"]
    assert second.params["data_uri"].startswith("s3://datasets/songs/b1-")
    assert count(services, decision_events) == 2600


def test_repeated_alert_is_one_run_per_incident_and_resolved_none(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    source = SOURCES["alertmanager"]

    def deliver(body: bytes) -> None:
        services.inbox.store(source.parse({}, body, clock.datetime()))
        settle(services, clock, 1)

    def alert_body(status: str, starts: str) -> bytes:
        return alerts.body(
            alerts.alertmanager_notification(
                alerts.alertmanager_alert(status=status, starts=starts)
            )
        )

    for _repeat in range(4):  # Alertmanager re-sends a firing alert every repeat_interval
        deliver(alert_body("firing", "2026-11-25T09:00:00Z"))
        backend.finish_all()
        settle(services, clock, 3600)
    assert backend.submit_calls == 1

    deliver(alert_body("resolved", "2026-11-25T09:00:00Z"))
    assert backend.submit_calls == 1
    no_runs = [d for d in _all_decisions(services) if d["outcome"] == "no_run"]
    assert any("resolved" in d["reason"] for d in no_runs)

    deliver(alert_body("firing", "2026-11-25T12:00:00Z"))  # a new incident
    assert backend.submit_calls == 2


def _all_decisions(services: Services) -> list[dict]:
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(decisions))]


def test_gitops_versions_follow_pushes_and_pins(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo
) -> None:
    services = build()
    v2 = repo.commit({"pipeline.yaml": "# compiled pipeline v2\n"}, "pipeline change")
    services.inbox.store([push_event(clock, repo, v2, ["pipeline.yaml"])])
    settle(services, clock, 1)
    assert backend.submit_calls == 1
    run = backend.runs["ext-1"]
    assert run.version.version == v2
    assert run.version.package_path.read_text() == "# compiled pipeline v2\n"
    assert services.versions.current("songs", "main") == v2

    docs = repo.commit({"README.md": "docs only\n"}, "docs")
    services.inbox.store([push_event(clock, repo, docs, ["README.md"])])
    settle(services, clock, 1)
    assert backend.submit_calls == 1
    reasons = [d["reason"] for d in _all_decisions(services) if d["outcome"] == "no_run"]
    assert any("README.md" in r or "path" in r for r in reasons), reasons

    backend.finish_all()
    services.inbox.store([data_event(clock, "songs/new.csv")])
    settle(services, clock)
    settle(services, clock, 31)
    assert backend.submit_calls == 2
    assert backend.runs["ext-2"].version.version == v2, "data runs the branch's current version"
    assert backend.runs["ext-2"].params["data_uri"] == "s3://datasets/songs/new.csv"

    # A pinned version wins over the branch's current one.
    pin = f"    version: {v2}\n    defaults:\n"
    pinned = rules_text(repo.url).replace("    defaults:\n", pin, 1)
    v3 = repo.commit({"pipeline.yaml": "# compiled pipeline v3\n"}, "v3")
    backend.finish_all()
    services = build(rules=pinned)
    services.inbox.store([push_event(clock, repo, v3, ["pipeline.yaml"])])
    settle(services, clock, 1)
    assert backend.runs["ext-3"].version.version == v3, "a push still runs the branch head"
    backend.finish_all()
    services.inbox.store([data_event(clock, "songs/newer.csv")])
    settle(services, clock)
    settle(services, clock, 31)
    assert backend.runs["ext-4"].version.version == v2


def test_temporary_errors_retry_and_permanent_ones_dead_letter_and_replay(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    backend.fail_next_submits = [TEMPORARY, TEMPORARY]
    services.inbox.store([manual_event(clock, "manual-1")])
    settle(services, clock)
    (decision,) = run_decisions(services)
    assert decision["state"] == "ready" and "503" in decision["last_error"]
    for _ in range(2):
        settle(services, clock, 600)
    assert backend.submit_calls == 3 and len(backend.runs) == 1

    backend.finish_all()
    settle(services, clock, 2)
    backend.fail_next_submits = [PERMANENT]
    services.inbox.store([manual_event(clock, "manual-2")])
    settle(services, clock, 1)
    dead = [d for d in run_decisions(services) if d["state"] == "dead"]
    assert len(dead) == 1 and "403" in dead[0]["last_error"]
    event = services.inbox.get("manual-2")
    assert event is not None and event["status"] == "dead" and "403" in event["last_error"]

    assert services.inbox.replay("manual-2")
    settle(services, clock, 1)
    assert len(backend.runs) == 2
    assert services.inbox.get("manual-2")["status"] == "decided"


def _runs(services: Services) -> list[dict]:
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(runs))]


def test_failed_gate_shows_as_failed_run_with_its_step(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    services.inbox.store([manual_event(clock, "manual-gate")])
    settle(services, clock)
    backend.states["ext-1"] = RunState.RUNNING
    settle(services, clock, 2)
    backend.states["ext-1"] = RunState.FAILED
    settle(services, clock, 2)
    (run,) = _runs(services)
    assert run["state"] == "failed" and run["failed_step"] == "evaluate"
    with services.engine.connect() as conn:
        history = [
            s["state"] for s in tracked.run_dict(conn, tracked.get_run(conn, run["id"]))["states"]
        ]
    assert history == ["submitting", "pending", "running", "failed"]


class RecordingRollout:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def rollout(self, model_name: str, version: int) -> str:
        self.calls.append((model_name, version))
        return "patched"


def test_a_published_version_is_linked_and_rolled_out(
    build: Build, clock: FakeClock, backend: ScriptedBackend
) -> None:
    services = build()
    rollout = RecordingRollout()
    services.models._rollout = rollout
    services.inbox.store([manual_event(clock, "manual-publish")])
    settle(services, clock)
    backend.outputs["ext-1"] = {"published": True, "model_name": "songs", "model_version": 3}
    backend.finish_all()
    settle(services, clock, 2)
    (run,) = _runs(services)
    assert (run["model_name"], run["model_version"]) == ("songs", 3)
    assert rollout.calls == [("songs", 3)]

    # A run that kept the champion publishes nothing and rolls nothing out.
    services.inbox.store([manual_event(clock, "manual-kept")])
    settle(services, clock, 2)
    backend.outputs["ext-2"] = {"published": False, "reason": "champion kept"}
    backend.finish_all()
    settle(services, clock, 2)
    assert rollout.calls == [("songs", 3)]


def test_a_push_naming_an_old_commit_runs_the_branch_head(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo
) -> None:
    services = build()
    old = repo.commit({"pipeline.yaml": "# compiled pipeline v2\n"}, "v2")
    head = repo.commit({"pipeline.yaml": "# compiled pipeline v3\n"}, "v3")
    services.inbox.store([push_event(clock, repo, old, ["pipeline.yaml"])])
    settle(services, clock, 1)
    assert backend.runs["ext-1"].version.version == head, "git decides, not the payload"
    assert services.versions.current("songs", "main") == head
