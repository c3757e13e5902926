"""Git decides which code trains: real repositories, signed deliveries over HTTP to the real
service (shadow backend). A push only says "look now"; the head, the changed paths and whether
anything is new come from git, and the branch's current version only moves forward."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitops.rules import gitops_rules
from tests.support.gitops import GitOpsService, force_push, push_payload
from tests.support.repo import GitRepo, git


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"pipeline.yaml": "# v1\n", "README.md": "hi\n"}, "v1")
    return repository


@pytest.fixture
def start(tmp_path: Path, repo: GitRepo) -> Iterator[Any]:
    started: list[GitOpsService] = []

    def _start(**rules: Any) -> GitOpsService:
        service = GitOpsService.start(tmp_path / "svc", gitops_rules(repo.url, **rules))
        started.append(service)
        return service

    yield _start
    for service in started:
        service.stop()


def settle(service: GitOpsService) -> None:
    service.wait_for(service.settled, "every event decided and every run decision submitted")


def versions_run(service: GitOpsService) -> list[str]:
    return [run["version"] for run in service.runs()]


def no_run_reasons(service: GitOpsService) -> list[str]:
    return [d["reason"] for d in service.decisions() if d["outcome"] == "no_run"]


def test_out_of_order_and_redelivered_pushes_run_the_head_once(start: Any, repo: GitRepo) -> None:
    service = start()
    v2 = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    v3 = repo.commit({"pipeline.yaml": "# v3\n"}, "v3")
    v4 = repo.commit({"pipeline.yaml": "# v4\n"}, "v4")
    # Redelivered after an outage, newest first: v4, then its parent v3, then v2.
    delivery = str(uuid.uuid4())
    assert (
        service.push_github(push_payload(repo, v4, v3, ["pipeline.yaml"]), delivery).status_code
        == 202
    )
    settle(service)
    assert service.push_github(push_payload(repo, v3, v2, ["pipeline.yaml"])).status_code == 202
    assert (
        service.push_github(push_payload(repo, v2, "0" * 40, ["pipeline.yaml"])).status_code == 202
    )
    settle(service)
    again = service.push_github(push_payload(repo, v4, v3, ["pipeline.yaml"]), delivery)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # The same signed body under a new id within TRIGGER_REPLAY_WINDOW_SECONDS is one event
    # (issue 12's replay window).
    replayed = service.push_github(push_payload(repo, v4, v3, ["pipeline.yaml"]))
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    # The same push in another body under a new id (another forge, a person's re-send) is a new
    # event: git decides, no new run.
    resent = json.dumps(push_payload(repo, v4, v3, ["pipeline.yaml"]), indent=1).encode()
    assert service.push_github(resent).status_code == 202
    settle(service)

    assert versions_run(service) == [v4]
    assert service.current_version() == v4
    reasons = no_run_reasons(service)
    assert len(reasons) == 3 and all(f"already built at {v4[:12]}" in r for r in reasons), reasons


def test_out_of_order_pushes_inside_a_debounce_window_make_one_run_at_the_head(
    start: Any, repo: GitRepo
) -> None:
    service = start(debounce=1.5)
    v1 = git(repo.path, "rev-parse", "HEAD")
    service.push_github(push_payload(repo, v1))
    settle(service)  # v1 is built: the diff base
    v2 = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    v3 = repo.commit({"pipeline/train.py": "print(3)\n"}, "v3")
    v4 = repo.commit({"README.md": "docs only\n"}, "v4")  # the head touches no watched path
    for after, before in ((v4, v3), (v3, v2), (v2, "0" * 40)):
        assert (
            service.push_github(push_payload(repo, after, before, ["README.md"])).status_code == 202
        )
    settle(service)
    decision = [d for d in service.decisions() if d["outcome"] == "run"][-1]
    assert decision["event_count"] == 3
    assert versions_run(service) == [v1, v4], "the head, with every change since v1 in it"
    assert service.current_version() == v4
    assert "touching pipeline.yaml (+1 more)" in decision["reason"]
    assert f"3 paths changed since {v1[:12]}" in decision["reason"]


def test_the_head_moving_during_the_debounce_window_runs_the_newest(
    start: Any, repo: GitRepo
) -> None:
    service = start(debounce=1.5)
    v2 = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    assert service.push_github(push_payload(repo, v2, "0" * 40)).status_code == 202
    service.wait_for(lambda: service.decisions(), "the push decided")
    v3 = repo.commit({"pipeline.yaml": "# v3\n"}, "v3")  # pushed, but its webhook never comes
    settle(service)
    assert versions_run(service) == [v3], "fire time asks git again"


def test_force_pushes_move_the_current_version_and_say_so(start: Any, repo: GitRepo) -> None:
    service = start()
    v2 = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    v3 = repo.commit({"pipeline.yaml": "# v3\n"}, "v3")
    service.push_github(push_payload(repo, v3, v2))
    settle(service)
    assert service.current_version() == v3

    # Back to an ancestor by force: older than the current version, nothing runs.
    git(repo.path, "reset", "-q", "--hard", v2)
    service.push_github(push_payload(repo, v2, v3))
    settle(service)
    assert versions_run(service) == [v3]
    assert any(f"older than the current version {v3[:12]}" in r for r in no_run_reasons(service))
    assert service.current_version() == v3

    # A rewritten history with no common ancestor: every path counts as changed, and it runs.
    root = force_push(repo, {"pipeline.yaml": "# rewritten\n"})
    service.push_github(push_payload(repo, root, v2, ["unrelated.txt"]))
    settle(service)
    assert versions_run(service) == [v3, root]
    assert service.current_version() == root
    decision = next(d for d in service.decisions() if d["version"] == root)
    assert "no common ancestor" in decision["reason"] and "force push" in decision["reason"]


def test_three_thousand_listed_files_outside_pipeline_do_not_hide_a_pipeline_change(
    start: Any, repo: GitRepo
) -> None:
    service = start()
    v1 = git(repo.path, "rev-parse", "HEAD")
    service.push_github(push_payload(repo, v1))
    settle(service)
    listed = {f"data/file-{i:04d}.csv": f"{i}\n" for i in range(3000)}
    head = repo.commit({**listed, "pipeline.yaml": "# v2\n"}, "big")
    # GitHub lists at most 3,000 files per commit: here exactly those, not pipeline.yaml.
    body = push_payload(repo, head, v1, sorted(listed))
    assert service.push_github(body).status_code == 202
    settle(service)
    assert versions_run(service) == [v1, head]
    decision = [d for d in service.decisions() if d["outcome"] == "run"][-1]
    assert "3001 paths changed" in decision["reason"]
    assert "touching pipeline.yaml" in decision["reason"]


def test_a_commit_list_capped_at_20_does_not_hide_a_pipeline_change(
    start: Any, repo: GitRepo
) -> None:
    service = start()
    base = repo.commit({"README.md": "base\n"}, "base")
    service.push_github(push_payload(repo, base, "0" * 40))
    settle(service)  # first build: base becomes the current version
    first = repo.commit({"pipeline/train.py": "print(1)\n"}, "touches the pipeline")
    commits = [first] + [repo.commit({"docs/n.md": f"{i}\n"}, f"docs {i}") for i in range(24)]
    listed = [
        {"id": sha, "added": [], "modified": ["docs/n.md"], "removed": []} for sha in commits[-20:]
    ]
    body = json.loads(Path("/work/shared/cases/gitlab-system-hook-push.json").read_text()) | {
        "before": base,
        "after": commits[-1],
        "commits": listed,
        "total_commits_count": 20,  # GitLab says 20 here too when it cut the list
    }
    body["project"]["git_http_url"] = repo.url
    assert service.push_gitlab(body).status_code == 202
    settle(service)
    assert versions_run(service) == [base, commits[-1]]


def test_a_payload_listing_watched_paths_that_git_did_not_change_runs_nothing(
    start: Any, repo: GitRepo
) -> None:
    service = start()
    v1 = git(repo.path, "rev-parse", "HEAD")
    service.push_github(push_payload(repo, v1))
    settle(service)
    docs = repo.commit({"README.md": "docs\n"}, "docs")
    service.push_github(push_payload(repo, docs, v1, ["pipeline.yaml"]))  # the hint is wrong
    settle(service)
    assert versions_run(service) == [v1]
    assert any("no path matched" in r for r in no_run_reasons(service))


def test_a_failed_fetch_keeps_gits_message(tmp_path: Path, start: Any, repo: GitRepo) -> None:
    service = start()
    head = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    (tmp_path / "svc" / "rules.yaml").write_text(gitops_rules((tmp_path / "gone").as_uri()))
    service.wait_for(lambda: service.client.get("/pipelines").status_code == 200, "rules reloaded")
    answer = service.push_github(push_payload(repo, head, "0" * 40))
    (event_id,) = answer.json()["accepted"]
    event = service.wait_for(
        lambda: (e := service.client.get(f"/events/{event_id}").json())["status"] == "dead" and e,
        "the event dead-lettered",
    )
    assert "does not appear to be a git repository" in event["last_error"]
    assert "Could not read from remote repository" in event["last_error"]


def test_manual_short_versions_resolve_in_the_branch_and_ambiguity_is_refused(
    start: Any, repo: GitRepo
) -> None:
    service = start()
    v2 = repo.commit({"pipeline.yaml": "# v2\n"}, "v2")
    repo.commit({"pipeline.yaml": "# v3\n"}, "v3")
    assert service.manual({"pipeline": "songs", "version": v2[:9]}).status_code == 202
    settle(service)
    assert versions_run(service) == [v2]

    assert service.manual({"pipeline": "songs", "version": "0000"}).status_code == 202
    settle(service)
    (dead,) = [d for d in service.decisions() if d["state"] == "dead"]
    assert "no commit starts with it" in dead["last_error"]
