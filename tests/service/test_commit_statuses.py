"""Commit statuses through the outbox, over the real worker, a real SQLite store, a real git
repository and the forges' HTTP doubles (real servers on loopback): what a push ends with on
its commit, in order, through outages, and nothing for a forge without a token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.service.conftest import Build, FakeClock
from tests.support.backends import ScriptedBackend
from tests.support.forges import ForgeDouble
from tests.support.repo import GitRepo
from trigger_service.database import outbox, runs
from trigger_service.events import CodeSubject, Event, EventKind
from trigger_service.service import Services
from trigger_service.submit.base import RunState

CONTEXT = "retrain/songs"


@pytest.fixture
def github() -> Iterator[ForgeDouble]:
    with ForgeDouble("github", token="gh-api-token") as double:
        yield double


def with_statuses(build: Build, forge: ForgeDouble, **overrides: object) -> Services:
    return build(
        github_api_url=forge.api_url,
        github_api_token="gh-api-token",
        public_url="https://trigger.example",
        **overrides,
    )


def push(clock: FakeClock, repo: GitRepo, sha: str, paths: list[str], n: int = 1) -> Event:
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
    return Event(f"github-{sha}-{n}", EventKind.CODE, "github", subject, clock.datetime())


def settle(services: Services, clock: FakeClock, seconds: float = 0.0) -> None:
    clock.advance(seconds)
    services.worker.run_until_idle()


def send(services: Services) -> int:
    assert services.outbox is not None
    return services.outbox.send_until_idle()


def outbox_rows(services: Services) -> list[dict]:
    with services.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def run_ids(services: Services) -> list[str]:
    with services.engine.connect() as conn:
        return list(conn.execute(select(runs.c.id).order_by(runs.c.created_at)).scalars())


def built_once(
    services: Services, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo
) -> None:
    """Git decides: the first build of a branch counts every path as changed. Build it once
    (its statuses go to a commit the forge does not know: dropped) so later pushes diff."""
    sha = repo.commit({"pipeline.yaml": "# first build\n"}, "first build")
    services.inbox.store([push(clock, repo, sha, ["pipeline.yaml"], 0)])
    settle(services, clock)
    backend.finish_all()
    settle(services, clock, 2)
    send(services)


def test_a_push_ends_with_pending_then_success_on_its_commit(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = with_statuses(build, github)
    sha = repo.commit({"pipeline.yaml": "# compiled pipeline v2\n"}, "retrain")
    github.add_commit("team/songs", sha)
    services.inbox.store([push(clock, repo, sha, ["pipeline.yaml"])])
    settle(services, clock)
    assert send(services) == 1
    (run_id,) = run_ids(services)
    (pending,) = github.posted
    assert (pending.sha, pending.context, pending.state) == (sha, CONTEXT, "pending")
    assert pending.description == f"training: run {run_id} started"
    assert pending.target_url == f"https://trigger.example/ui/runs/{run_id}"

    backend.outputs["ext-1"] = {"published": True, "model_name": "songs", "model_version": 3}
    backend.finish_all()
    settle(services, clock, 2)
    send(services)
    assert github.states("team/songs", sha, CONTEXT) == ["pending", "success"]
    assert github.posted[-1].description == "model songs v3 published"

    # A second worker pass, a restart or a replayed state change posts nothing again.
    settle(services, clock, 2)
    assert send(services) == 0
    assert len(github.posted) == 2


def test_a_failing_run_ends_in_failure_with_its_step(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = with_statuses(build, github)
    sha = repo.commit({"pipeline.yaml": "# v2\n"}, "retrain")
    github.add_commit("team/songs", sha)
    services.inbox.store([push(clock, repo, sha, ["pipeline.yaml"])])
    settle(services, clock)
    send(services)
    backend.finish_all(RunState.FAILED)
    settle(services, clock, 2)
    send(services)
    assert github.states("team/songs", sha, CONTEXT) == ["pending", "failure"]
    assert github.posted[-1].description == "evaluate failed: gate failed"


def test_a_push_that_runs_nothing_is_a_success_with_the_reason(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = with_statuses(build, github)
    built_once(services, clock, backend, repo)
    sha = repo.commit({"README.md": "docs\n"}, "docs")
    github.add_commit("team/songs", sha)
    services.inbox.store([push(clock, repo, sha, ["README.md"])])
    settle(services, clock)
    send(services)
    (posted,) = [p for p in github.posted if p.sha == sha]
    assert posted.state == "success" and posted.sha == sha
    assert "pipeline.yaml" in posted.description, posted.description
    assert posted.target_url and "/decisions/d-" in posted.target_url


def test_a_push_during_a_run_is_queued_behind_it(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = with_statuses(build, github)
    first = repo.commit({"pipeline.yaml": "# v2\n"}, "one")
    github.add_commit("team/songs", first)
    services.inbox.store([push(clock, repo, first, ["pipeline.yaml"])])
    settle(services, clock)
    backend.states["ext-1"] = RunState.RUNNING
    settle(services, clock, 2)
    second = repo.commit({"pipeline.yaml": "# v3\n"}, "two")
    github.add_commit("team/songs", second)
    services.inbox.store([push(clock, repo, second, ["pipeline.yaml"])])
    settle(services, clock)
    send(services)
    (active,) = run_ids(services)
    assert github.states("team/songs", first, CONTEXT) == ["pending"], "running supersedes it"
    assert [p.description for p in github.posted if p.sha == second] == [
        f"queued behind run {active}"
    ]


def test_a_forge_outage_delays_statuses_and_loses_none(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = with_statuses(build, github)
    commits = []
    github.down()
    for n in range(3):
        sha = repo.commit({"pipeline.yaml": f"# v{n + 2}\n"}, f"change {n}")
        github.add_commit("team/songs", sha)
        commits.append(sha)
        services.inbox.store([push(clock, repo, sha, ["pipeline.yaml"], n)])
        settle(services, clock)
        send(services)
        backend.outputs[f"ext-{n + 1}"] = {"published": False, "reason": "not published: worse"}
        backend.finish_all()
        settle(services, clock, 2)
        send(services)
    waiting = [r for r in outbox_rows(services) if r["state"] == "pending"]
    assert len(waiting) == 3, "only the newest state of each commit"
    # One try per pass: the forge refused the first row, the others waited untried.
    tried = [r for r in waiting if r["attempts"]]
    assert len(tried) == 1 and "ConnectError" in tried[0]["last_error"]
    assert all(r["last_error"] is None for r in waiting if r not in tried)
    assert github.requests == 0

    github.up()
    clock.advance(400)  # past the longest backoff (TRIGGER_RETRY_MAX_SECONDS)
    send(services)
    for sha in commits:
        assert github.states("team/songs", sha, CONTEXT) == ["success"]
        assert github.posted[commits.index(sha)].description.startswith(
            "trained, not published: worse"
        )
    states = {r["state"] for r in outbox_rows(services)}
    assert states == {"delivered", "superseded"}


def test_5xx_and_rate_limits_retry_after_the_servers_delay(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = with_statuses(build, github)
    built_once(services, clock, backend, repo)
    sha = repo.commit({"README.md": "docs\n"}, "docs")
    github.add_commit("team/songs", sha)
    github.fail_next(1, 503)
    github.secondary_rate_limit(retry_after=120)
    services.inbox.store([push(clock, repo, sha, ["README.md"])])
    settle(services, clock)
    send(services)  # 503: backoff from TRIGGER_RETRY_BASE_SECONDS (1 s here)
    clock.advance(2)
    send(services)  # 429 with retry-after: 120
    (row,) = [r for r in outbox_rows(services) if r["payload"]["sha"] == sha]
    assert row["state"] == "pending" and row["attempts"] == 2
    assert row["not_before"] - clock() >= 119.9
    clock.advance(60)
    assert send(services) == 0, "not before the server's retry-after"
    clock.advance(61)
    send(services)
    assert github.states("team/songs", sha, "retrain") == ["success"]


def test_a_permanent_refusal_is_dropped_with_a_log_line_and_a_metric(
    build: Build,
    clock: FakeClock,
    repo: GitRepo,
    github: ForgeDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = with_statuses(build, github)
    sha = repo.commit({"README.md": "docs\n"}, "docs")
    github.add_commit("team/songs", "f" * 40)  # the repository is there, this commit is not: 422
    labels = {"channel": "github", "outcome": "dropped"}
    before = REGISTRY.get_sample_value("trigger_outbox_total", labels) or 0
    services.inbox.store([push(clock, repo, sha, ["README.md"])])
    settle(services, clock)
    send(services)
    (row,) = outbox_rows(services)
    assert row["state"] == "dropped" and "HTTP 422" in row["last_error"]
    assert REGISTRY.get_sample_value("trigger_outbox_total", labels) == before + 1
    assert any("dropped" in r.getMessage() and "HTTP 422" in r.getMessage() for r in caplog.records)
    clock.advance(1000)
    assert send(services) == 0 and github.posted == []


def test_nothing_is_posted_for_a_forge_without_a_token(
    build: Build, clock: FakeClock, backend: ScriptedBackend, repo: GitRepo, github: ForgeDouble
) -> None:
    services = build(github_api_url=github.api_url)  # no TRIGGER_GITHUB_API_TOKEN
    sha = repo.commit({"pipeline.yaml": "# v2\n"}, "retrain")
    github.add_commit("team/songs", sha)
    services.inbox.store([push(clock, repo, sha, ["pipeline.yaml"])])
    settle(services, clock)
    backend.finish_all()
    settle(services, clock, 2)
    assert services.outbox is None
    assert outbox_rows(services) == []
    assert github.requests == 0


def test_a_git_poll_event_reports_on_the_forge_that_serves_its_repository(
    build: Build, clock: FakeClock, repo: GitRepo, github: ForgeDouble
) -> None:
    """Source `poll` names only the repository URL: its forge is found by host."""
    services = with_statuses(build, github)
    sha = repo.commit({"pipeline.yaml": "# v2\n"}, "moved head")
    github.add_commit("team/songs", sha)
    subject = CodeSubject(
        repository=f"http://127.0.0.1:{github.api_url.split(':')[-1]}/team/songs.git",
        repository_name="",
        ref="refs/heads/main",
        branch="main",
        tag=None,
        before="b" * 40,
        after=sha,
        changed_paths=None,
    )
    event = Event("poll-1", EventKind.CODE, "poll", subject, clock.datetime())
    services.inbox.store([event])
    settle(services, clock)
    send(services)
    (posted,) = github.posted
    assert (posted.repository, posted.sha, posted.state) == ("team/songs", sha, "pending")
    assert posted.description.startswith("training: run r-")
