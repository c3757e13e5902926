"""Values that could reach git are refused at the edge: 400 naming the field, nothing stored,
and no git process started (a recording `git` is first on the real service's PATH)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitops.rules import gitops_rules
from tests.support.gitops import GitOpsService, push_payload
from tests.support.repo import GitRepo

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "cases"
OPTION = "--upload-pack=touch /tmp/upload-pack-ran;#"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsService]:
    tmp = tmp_path_factory.mktemp("edge")
    repo = GitRepo(tmp / "repo")
    repo.commit({"pipeline.yaml": "# v1\n"}, "init")
    running = GitOpsService.start(tmp, gitops_rules(repo.url, poll_seconds=0))
    running.repo = repo  # type: ignore[attr-defined]
    yield running
    running.stop()


def case(name: str) -> bytes:
    path = CASES / name
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    return path.read_bytes()


def bad_push(repo: GitRepo, **fields: Any) -> dict[str, Any]:
    return push_payload(repo, "a" * 40) | fields


def test_shared_cases_are_refused_before_any_git_call(service: GitOpsService) -> None:
    calls = len(service.git_calls())
    for name, field in (
        ("github-push-option-in-after.json", "field after"),
        ("github-push-nul-in-after.json", "field after"),
    ):
        answer = service.push_github(case(name))
        assert answer.status_code == 400, answer.text
        assert field in answer.json()["error"]
        assert "not a commit id (40 or 64 hex digits)" in answer.json()["error"]
    assert not Path("/tmp/upload-pack-ran").exists()
    assert service.events() == []
    assert service.git_calls()[calls:] == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"after": OPTION}, "field after"),
        ({"after": "-c"}, "field after"),
        ({"after": "../../../../etc/passwd"}, "field after"),
        ({"after": "a" * 39 + "\x00"}, "field after"),
        ({"after": "a" * 41}, "field after"),
        ({"after": "a" * 5000}, "field after"),
        ({"after": "a" * 63}, "field after"),
        ({"after": "\u0661" * 40}, "field after"),  # Arabic-Indic digits are not hex
        ({"after": "a" * 40 + "\n"}, "field after"),
        ({"before": OPTION}, "field before"),
        ({"ref": "refs/heads/--upload-pack=/tmp/x"}, "starts with '-'"),
        ({"ref": "refs/heads/--upload-pack=touch /tmp/x"}, "starts with '-'"),
        ({"ref": "refs/heads/-x"}, "starts with '-'"),
        ({"ref": "refs/heads/../../etc"}, "contains '..'"),
        ({"ref": "refs/heads/a\x00b"}, "contains '\\x00'"),
        ({"ref": "refs/heads/" + "b" * 300}, "longer than 255 bytes"),
        ({"ref": "refs/heads/a b"}, "contains ' '"),
        ({"ref": "refs/tags/v1..2"}, "contains '..'"),
        ({"ref": "refs/heads/x.lock"}, "ending with '.lock'"),
        ({"ref": "refs/heads/a@{b"}, "contains '@{'"),
        ({"ref": "refs/heads/main\n"}, "contains '\\n'"),
    ],
)
def test_neighbours_of_each_kind_get_400_naming_the_field(
    service: GitOpsService, fields: dict[str, Any], message: str
) -> None:
    calls = len(service.git_calls())
    answer = service.push_github(bad_push(service.repo, **fields))  # type: ignore[attr-defined]
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]
    assert service.events() == []
    assert service.git_calls()[calls:] == []


@pytest.mark.parametrize(
    "version",
    [OPTION, "-c", "--end-of-options", "../x", "a\x00b", "x" * 300, "@{-1}", "main:evil", ""],
)
def test_manual_version_options_and_paths_are_refused(service: GitOpsService, version: str) -> None:
    calls = len(service.git_calls())
    answer = service.manual({"pipeline": "songs", "version": version})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith("manual trigger: field version: ")
    assert service.events() == []
    assert service.git_calls()[calls:] == []


def test_gitlab_token_holder_gets_the_same_checks(service: GitOpsService) -> None:
    body = json.loads(case("gitlab-system-hook-push.json"))
    body["after"] = OPTION
    calls = len(service.git_calls())
    answer = service.push_gitlab(body, event="Push Hook")
    assert answer.status_code == 400 and "field after" in answer.json()["error"]
    assert service.git_calls()[calls:] == []
