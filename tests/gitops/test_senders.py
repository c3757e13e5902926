"""What each sender sees, over HTTP from the real service: test deliveries, System Hooks, tags,
and the git routes' 25 MB body limit (streamed; 413 above it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitops import GitOpsService, push_payload
from tests.support.repo import GitRepo, rules_text

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "cases"
LIMIT = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsService]:
    tmp = tmp_path_factory.mktemp("senders")
    repo = GitRepo(tmp / "repo")
    repo.commit({"pipeline.yaml": "# v1\n"}, "init")
    running = GitOpsService.start(tmp, rules_text(repo.url))
    running.repo = repo  # type: ignore[attr-defined]
    yield running
    running.stop()


def case(name: str) -> bytes:
    path = CASES / name
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    return path.read_bytes()


@pytest.mark.parametrize(
    "name", ["gitea-test-delivery-before-equals-after.json", "gitea-test-delivery-zero-ids.json"]
)
@pytest.mark.parametrize("forge", ["Gitea", "Forgejo", "Gogs"])
def test_gitea_forgejo_gogs_test_deliveries_are_said_to_be_tests(
    service: GitOpsService, name: str, forge: str
) -> None:
    answer = service.push_gitea(case(name), header_prefix=forge)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ignored": True, "reason": "test delivery"}
    assert service.events() == []


def test_gitlab_system_hook_push_is_a_push(service: GitOpsService) -> None:
    answer = service.push_gitlab(case("gitlab-system-hook-push.json"), event="System Hook")
    assert answer.status_code == 202, answer.text
    (stored,) = [e for e in service.events() if e["id"] in answer.json()["accepted"]]
    assert stored["subject"]["branch"] == "main"
    assert stored["subject"]["repository_name"] == "team/songs"


def test_gitlab_system_hook_tag_push_is_stored_and_never_runs(service: GitOpsService) -> None:
    body = json.loads(case("gitlab-system-hook-push.json"))
    body |= {"event_name": "tag_push", "object_kind": "tag_push", "ref": "refs/tags/v1"}
    answer = service.push_gitlab(body, event="System Hook")
    assert answer.status_code == 202
    (event_id,) = answer.json()["accepted"]
    decided = service.wait_for(lambda: service.decisions_of(event_id), "the tag push decided")
    assert decided[0]["outcome"] == "no_run" and "tags do not run" in decided[0]["reason"]


def test_gitlab_other_system_events_are_acknowledged(service: GitOpsService) -> None:
    answer = service.push_gitlab({"event_name": "project_create"}, event="System Hook")
    assert answer.status_code == 200 and answer.json()["ignored"] is True
    assert "project_create" in answer.json()["reason"]


def test_a_push_larger_than_a_mebibyte_is_accepted(service: GitOpsService) -> None:
    repo: GitRepo = service.repo  # type: ignore[attr-defined]
    paths = [f"data/part-{i:06d}/file-with-a-long-name.csv" for i in range(60_000)]
    body = json.dumps(push_payload(repo, "a" * 40, "b" * 40, paths)).encode()
    assert 2 * 1024 * 1024 < len(body) < LIMIT
    answer = service.push_github(body)
    assert answer.status_code == 202, answer.text[:300]


def test_over_25_mb_is_413_declared_or_streamed(service: GitOpsService) -> None:
    body = b"{" + b" " * LIMIT + b"}"
    answer = service.push_github(body)
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(27):
            yield b" " * (1024 * 1024)

    streamed = service.client.post(
        "/webhooks/github",
        content=chunks(),
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "big"},
    )
    assert streamed.status_code == 413
    assert service.client.get("/readyz").status_code == 200


def test_a_github_tag_push_is_stored_and_never_runs(service: GitOpsService) -> None:
    repo = service.repo  # type: ignore[attr-defined]
    head = repo.commit({"pipeline.yaml": "# tagged\n"}, "tagged")
    body = push_payload(repo, head, paths=["pipeline.yaml"]) | {"ref": "refs/tags/v2"}
    answer = service.push_github(body)
    assert answer.status_code == 202, answer.text
    (event_id,) = answer.json()["accepted"]
    decided = service.wait_for(lambda: service.decisions_of(event_id), "the tag push decided")
    assert decided[0]["outcome"] == "no_run" and "tags do not run" in decided[0]["reason"]
