"""The git cache after a kill: a stale `<ref>.lock` (git killed by its timeout, or the service by
SIGKILL, mid-fetch) and a half-made bare repository no longer fail every later fetch; a pushed
tree with a link out of itself is a permanent, named failure. Real git throughout."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.repo import GitRepo, git
from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.versions import git as git_module
from trigger_service.versions.git import GitCache


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"pipeline.yaml": "v1\n"}, "v1")
    return repository


def test_a_stale_ref_lock_left_by_a_killed_git_is_removed(tmp_path: Path, repo: GitRepo) -> None:
    cache = GitCache(tmp_path / "cache")
    cache.fetch_branch(repo.url, "main")
    lock = cache.bare(repo.url) / "refs" / "heads" / "main.lock"
    lock.write_text("")
    v2 = repo.commit({"pipeline.yaml": "v2\n"}, "v2")
    # A fresh lock may belong to a git still running (another process): left alone.
    with pytest.raises(TemporaryError, match="cannot lock ref"):
        cache.fetch_branch(repo.url, "main")
    old = time.time() - git_module.GIT_TIMEOUT - 120
    os.utime(lock, (old, old))
    assert cache.fetch_branch(repo.url, "main") == v2
    assert not lock.exists()


def test_a_cache_repository_set_up_half_way_is_made_again(
    tmp_path: Path, repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = GitCache(tmp_path / "cache")
    real = GitCache._git

    def killed_at_remote_add(self: GitCache, url: str, *args: str, cwd: Path | None = None) -> str:
        if args[0] == "remote":
            raise KeyboardInterrupt  # the process dies between `git init` and `remote add`
        return real(self, url, *args, cwd=cwd)

    monkeypatch.setattr(GitCache, "_git", killed_at_remote_add)
    with pytest.raises(KeyboardInterrupt):
        cache.bare(repo.url)
    monkeypatch.setattr(GitCache, "_git", real)
    head = git(repo.path, "rev-parse", "HEAD")
    assert cache.fetch_branch(repo.url, "main") == head


def test_a_link_out_of_the_tree_is_a_permanent_named_error(tmp_path: Path, repo: GitRepo) -> None:
    (repo.path / "pipeline.yaml").unlink()
    (repo.path / "pipeline.yaml").symlink_to("/etc/passwd")
    git(repo.path, "add", "-A")
    git(repo.path, "commit", "-qm", "link")
    commit = git(repo.path, "rev-parse", "HEAD")
    with pytest.raises(PermanentError, match=f"commit {commit[:12]} .*absolute path"):
        GitCache(tmp_path / "cache").checkout(repo.url, commit)
