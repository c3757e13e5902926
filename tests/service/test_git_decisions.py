"""Deciding a push asks git: a passing git failure sends the events back to the inbox (one try
per batch, not per event), a lasting one dead-letters them with git's message."""

from __future__ import annotations

import pytest

from tests.service.conftest import Build, FakeClock
from tests.support.backends import ScriptedBackend
from tests.support.repo import GitRepo
from trigger_service.errors import TemporaryError
from trigger_service.events import CodeSubject, Event, EventKind


def push(clock: FakeClock, repo: GitRepo, n: int, after: str) -> Event:
    subject = CodeSubject(
        repository=repo.url,
        repository_name="team/songs",
        ref="refs/heads/main",
        branch="main",
        tag=None,
        before="0" * 40,
        after=after,
        changed_paths=("pipeline.yaml",),
    )
    return Event(f"github-{n}", EventKind.CODE, "github", subject, clock.datetime())


def test_a_passing_git_failure_retries_the_batch_once_then_decides(
    build: Build,
    clock: FakeClock,
    backend: ScriptedBackend,
    repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = build()
    git = services.worker.heads.git  # type: ignore[union-attr]
    head = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    real = git.fetch_branch
    calls: list[str] = []

    def unreachable(url: str, branch: str) -> str:
        calls.append(branch)
        raise TemporaryError("git ls-remote: Could not resolve host: example.com")

    monkeypatch.setattr(git, "fetch_branch", unreachable)
    services.inbox.store([push(clock, repo, n, head) for n in range(50)])
    services.worker.run_until_idle()
    assert calls == ["main"], "one git try for the whole batch"
    pending = [e for e in services.inbox.list(limit=100) if e["status"] == "pending"]
    assert len(pending) == 50 and "Could not resolve host" in pending[0]["last_error"]
    assert backend.submit_calls == 0

    monkeypatch.setattr(git, "fetch_branch", real)
    clock.advance(600)
    services.worker.run_until_idle()
    assert [r.version.version for r in backend.runs.values()] == [head]
    assert services.inbox.depth()["decided"] == 50
