"""versions.git against real repositories: heads, ancestry, diffs, short ids, git's own errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.gitops import force_push
from tests.support.repo import GitRepo, git
from trigger_service.errors import PermanentError
from trigger_service.versions.git import GitCache, git_message


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"pipeline.yaml": "v1\n"}, "init")
    return repository


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache")


def test_a_failed_fetch_keeps_gits_whole_message(tmp_path: Path, cache: GitCache) -> None:
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(PermanentError) as caught:
        cache.fetch_branch(missing, "main")
    message = str(caught.value)
    assert "does not appear to be a git repository" in message  # the line that says why
    assert "Could not read from remote repository" in message
    assert message.startswith(f"git ls-remote {missing}: ")


def test_git_message_trims_progress_and_cuts_the_middle() -> None:
    assert git_message("\n\nremote: Counting\rremote: done\nfatal: bad\n") == (
        "remote: done | fatal: bad"
    )
    long = "\n".join(f"line {i}" for i in range(2000))
    cut = git_message(long)
    assert len(cut) < 2100 and cut.startswith("line 0 |") and cut.endswith("line 1999")
    assert git_message("") == "(no message)"


def test_head_ancestry_and_changed_paths(repo: GitRepo, cache: GitCache) -> None:
    v1 = git(repo.path, "rev-parse", "HEAD")
    v2 = repo.commit({"pipeline/a.py": "a\n"}, "v2")
    v3 = repo.commit({"README.md": "r\n"}, "v3")
    assert cache.fetch_branch(repo.url, "main") == v3
    assert cache.relation(repo.url, None, v3) == "first"
    assert cache.relation(repo.url, v3, v3) == "same"
    assert cache.relation(repo.url, v1, v3) == "ahead"
    assert cache.relation(repo.url, v3, v2) == "older"
    assert cache.changed_paths(repo.url, v1, v3) == ("README.md", "pipeline/a.py")
    assert cache.changed_paths(repo.url, v2, v3) == ("README.md",)

    git(repo.path, "reset", "-q", "--hard", v2)
    v4 = repo.commit({"other.txt": "o\n"}, "v4 beside v3")
    assert cache.fetch_branch(repo.url, "main") == v4
    assert cache.relation(repo.url, v3, v4) == "diverged"
    root = force_push(repo, {"pipeline.yaml": "new root\n"})
    assert cache.fetch_branch(repo.url, "main") == root
    assert cache.relation(repo.url, v4, root) == "unrelated"


def test_short_ids_resolve_once_and_refuse_ambiguity(repo: GitRepo, cache: GitCache) -> None:
    head = repo.commit({"x": "1\n"}, "x")
    assert cache.resolve_short(repo.url, "main", head[:8]) == head
    # 1,500 commits in one `git fast-import`: two of them share a 4-digit prefix (birthday
    # bound: all distinct with probability under 1e-7).
    stream = []
    for i in range(1500):
        stream += [
            "commit refs/heads/main",
            f"committer t <t@example.com> {1_700_000_000 + i} +0000",
            f"data {len(str(i))}",
            str(i),
        ]
        if i == 0:
            stream.append(f"from {head}")
    subprocess.run(
        ["git", "-C", str(repo.path), "fast-import", "--quiet"],
        input="\n".join(stream) + "\n",
        text=True,
        check=True,
    )
    seen: dict[str, str] = {}
    for sha in git(repo.path, "rev-list", "main").split():
        if sha[:4] in seen:
            break
        seen[sha[:4]] = sha
    else:
        raise AssertionError("no two of 1,500 commits share a 4-digit prefix")
    with pytest.raises(PermanentError, match=f"version {sha[:4]} is ambiguous"):
        cache.resolve_short(repo.url, "main", sha[:4])
    with pytest.raises(PermanentError, match="no commit starts with it"):
        cache.resolve_short(repo.url, "main", "0000000")
