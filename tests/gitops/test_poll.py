"""The poll catches what no webhook said, and never runs a head twice: the real service over
HTTP with a short poll interval, and the poller alone against real repositories."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitops.rules import gitops_rules
from tests.support.gitops import GitOpsService, push_payload
from tests.support.repo import GitRepo, git
from trigger_service.rules import RulesError, parse_rules
from trigger_service.versions.poll import tracked_branches

POLL = 1.0  # the shortest interval the rules allow


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"pipeline.yaml": "# v1\n"}, "v1")
    return repository


@pytest.fixture
def service(tmp_path: Path, repo: GitRepo) -> Iterator[GitOpsService]:
    running = GitOpsService.start(tmp_path / "svc", gitops_rules(repo.url, poll_seconds=POLL))
    yield running
    running.stop()


def settle(service: GitOpsService) -> None:
    service.wait_for(service.settled, "every event decided and every run submitted")


def runs_at(service: GitOpsService) -> list[str]:
    return [r["version"] for r in service.runs()]


def test_a_dropped_webhook_is_caught_by_the_poll_within_an_interval(
    service: GitOpsService, repo: GitRepo
) -> None:
    v1 = git(repo.path, "rev-parse", "HEAD")
    service.push_github(push_payload(repo, v1))
    settle(service)
    assert runs_at(service) == [v1]

    v2 = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")  # pushed; its webhook is lost
    pushed = time.time()
    service.wait_for(lambda: runs_at(service) == [v1, v2], "the poll to run v2", timeout=30)
    (event,) = [e for e in service.events() if e["source"] == "poll"]
    assert event["subject"]["after"] == v2 and event["subject"]["before"] == v1
    assert service.current_version() == v2
    # Seen within one interval (plus the poll thread's wake-up and a loaded machine's delays).
    assert event["received_at"] - pushed < POLL + 2.0, event["received_at"] - pushed


def test_a_webhook_and_the_poll_for_the_same_head_make_one_run(
    service: GitOpsService, repo: GitRepo
) -> None:
    v1 = git(repo.path, "rev-parse", "HEAD")
    service.push_github(push_payload(repo, v1))
    settle(service)
    for n in range(3):
        head = repo.commit({"pipeline.yaml": f"# v{n + 2}\n"}, f"v{n + 2}")
        service.push_github(push_payload(repo, head, v1))
        time.sleep(POLL * 2)  # the poll sees every head too
        settle(service)
        assert runs_at(service).count(head) == 1
    assert len(runs_at(service)) == 4
    time.sleep(POLL * 3)
    assert len(runs_at(service)) == 4, "nothing more once every head is built"


def test_docs_only_moves_seen_by_the_poll_run_nothing(
    service: GitOpsService, repo: GitRepo
) -> None:
    v1 = git(repo.path, "rev-parse", "HEAD")
    service.push_github(push_payload(repo, v1))
    settle(service)
    repo.commit({"README.md": "docs\n"}, "docs")
    reasons = service.wait_for(
        lambda: [d["reason"] for d in service.decisions() if d["outcome"] == "no_run"],
        "the poll's event decided",
    )
    assert "no path matched" in reasons[0]
    assert runs_at(service) == [v1]


def test_tracked_branches_group_pipelines_and_skip_globs_and_zero() -> None:
    text = gitops_rules("https://example.com/team/songs.git", poll_seconds=60).replace(
        "    branches: [main]\n", "    branches: [main, release/1, 'feature/*']\n"
    )
    tracked = tracked_branches(parse_rules(text, "rules.yaml"))
    assert sorted(b for _, b in tracked) == ["main", "release/1"]
    assert all(t.interval == 60 and t.pipelines == ["songs"] for t in tracked.values())
    off = gitops_rules("https://example.com/team/songs.git", poll_seconds=0)
    assert tracked_branches(parse_rules(off, "rules.yaml")) == {}


@pytest.mark.parametrize("value", ["0.001", "0.5", "-1", ".inf", ".nan", "1e23", "604801", "true"])
def test_poll_intervals_that_hammer_the_forge_or_mean_never_are_refused(value: str) -> None:
    text = gitops_rules("https://example.com/team/songs.git", poll_seconds=0).replace(
        "poll_seconds: 0", f"poll_seconds: {value}"
    )
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    assert "pipelines[0].source.poll_seconds" in str(caught.value)


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("1", 1.0), ("604800", 604800.0)])
def test_poll_intervals_from_off_to_a_week_are_kept(value: str, seconds: float) -> None:
    text = gitops_rules("https://example.com/team/songs.git", poll_seconds=0).replace(
        "poll_seconds: 0", f"poll_seconds: {value}"
    )
    assert parse_rules(text, "rules.yaml").pipelines[0].source.poll_seconds == seconds


def test_a_new_install_notes_the_head_and_does_not_train_at_once(
    tmp_path: Path, repo: GitRepo
) -> None:
    running = GitOpsService.start(tmp_path / "svc", gitops_rules(repo.url, poll_seconds=POLL))
    try:
        time.sleep(POLL * 4)
        assert running.events() == []
        assert any(call[:2] == ["ls-remote", "--end-of-options"] for call in running.git_calls())
    finally:
        running.stop()
