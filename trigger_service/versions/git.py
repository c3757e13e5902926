"""Real `git` into a cache: one bare repository per remote, one tree per commit.

The cache keeps the tracked branches' whole history (no shallow fetches), so "is the current
version an ancestor of the head?" and "which paths changed since?" are git's exact answers.

Every command puts `--end-of-options` between its options and its operands, and every operand
that came from outside (a branch, a commit) was checked by `versions.refs` first: a value can
never become an option such as `--upload-pack=<cmd>`. HTTPS credentials travel in GIT_CONFIG_*
environment variables (an Authorization header), never in argv or the remote URL, so they
appear neither in `ps` nor in error messages. A failed command raises with git's whole stderr
(trimmed), not only its last line, which is often just "Please make sure you have the correct
access rights".
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.versions.refs import branch_name, commit_id, inside

log = logging.getLogger(__name__)
GIT_TIMEOUT = 120.0  # a fetch of a long history may take a while
LS_REMOTE_TIMEOUT = 30.0  # one round trip: a remote this slow holds the worker's batch
# After a remote timed out, it is not asked again for this long: every retry of its events (and
# the poll) would otherwise hold the worker another timeout, and every other pipeline with it.
QUIET_AFTER_TIMEOUT = 120.0
_NETWORK = ("ls-remote", "fetch")
# The only transports git may use, whatever the environment or a git config says: a rules file's
# `ext::<command>` or `fd::` (remote helpers), git://, ssh:// never run. Local paths are "file".
ALLOWED_PROTOCOLS = "file:https"
MAX_MESSAGE = 2000  # characters of git's stderr kept in an error
# Network trouble may pass; a missing commit, branch or repository will not.
TRANSIENT = (
    "Could not resolve host",
    "timed out",
    "Connection refused",
    "Connection reset",
    "Connection timed out",
    "early EOF",
    "The requested URL returned error: 5",
    "RPC failed",
    "cannot lock ref",  # another process of this cache fetched at the same moment
    ".lock': File exists",
)

Relation = Literal["first", "same", "ahead", "older", "diverged", "unrelated", "missing"]


class BranchGone(PermanentError):
    """The remote has no such branch (now): deleted after the push, or never pushed."""


def git_message(stderr: str) -> str:
    """git's stderr as one line: progress and blank lines dropped, long output cut in the
    middle (the first lines say what failed, the last what to do)."""
    lines = [line.split("\r")[-1].strip() for line in stderr.split("\n")]
    text = " | ".join(line for line in lines if line) or "(no message)"
    if len(text) > MAX_MESSAGE:
        keep = MAX_MESSAGE // 2
        text = f"{text[:keep]} ... {text[-keep:]}"
    return text


class GitCache:
    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root.resolve()  # git runs with other working directories
        self.token = token
        # The worker, the explain route and the poll share a cache: one writer per repository.
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()
        self._silent: dict[str, tuple[float, str]] = {}  # url -> (quiet until, monotonic; why)

    def _lock(self, url: str) -> threading.RLock:
        with self._locks_lock:
            return self._locks.setdefault(self._key(url), threading.RLock())

    def _env(self, url: str) -> dict[str, str]:
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
            "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,  # overrides protocol.allow and friends
        }
        if self.token and url.startswith("https://"):
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
            )
        return env

    def _run(
        self, url: str, *args: str, cwd: Path | None = None, ok: tuple[int, ...] = (0,)
    ) -> subprocess.CompletedProcess[str]:
        """Run git; a return code outside `ok` raises Temporary/PermanentError with stderr.

        A remote that never answers costs `timeout` seconds: git and its helpers
        (git-remote-https, upload-pack) run in their own process group, and the whole group is
        killed, not only `git` (its helper would otherwise hold the connection open)."""
        timeout = LS_REMOTE_TIMEOUT if args[0] == "ls-remote" else GIT_TIMEOUT
        if args[0] in _NETWORK and (silent := self._silent.get(url)) is not None:
            left = silent[0] - time.monotonic()
            if left > 0:
                raise TemporaryError(f"{silent[1]}; not asked again for {left:.0f}s")
        with subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=self._env(url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                error = f"git {args[0]} {url}: timed out after {timeout:.0f}s"
                if args[0] in _NETWORK:
                    self._silent[url] = (time.monotonic() + QUIET_AFTER_TIMEOUT, error)
                raise TemporaryError(error) from exc
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if done.returncode not in ok:
            error = f"git {args[0]} {url}: {git_message(done.stderr)}"
            if any(t in done.stderr for t in TRANSIENT):
                raise TemporaryError(error)
            raise PermanentError(error)
        return done

    def _git(self, url: str, *args: str, cwd: Path | None = None) -> str:
        return self._run(url, *args, cwd=cwd).stdout

    def _key(self, url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()[:16]

    def bare(self, url: str) -> Path:
        with self._lock(url):
            return self._bare(url)

    def _bare(self, url: str) -> Path:
        path = inside(self.root, "repos", self._key(url))
        if not (path / "HEAD").exists():
            # Set up aside and renamed into place: a process killed half-way (init done,
            # remote not added) must not leave a cache that fails every later fetch.
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".repo-", dir=path.parent))
            try:
                self._git(url, "init", "--bare", "--quiet", "--end-of-options", str(staging))
                self._git(url, "remote", "add", "--end-of-options", "origin", url, cwd=staging)
                if path.exists():  # an empty or half-made folder from an older version
                    shutil.rmtree(path)
                os.replace(staging, path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return path

    def _clear_stale_locks(self, repo: Path) -> None:
        """Remove lock files older than any git of ours may live: a git killed by its timeout
        or by a SIGKILL of the service leaves `<ref>.lock` behind, and git then refuses to
        update that ref for ever ("cannot lock ref ... File exists")."""
        horizon = time.time() - GIT_TIMEOUT - 60
        names = ("packed-refs.lock", "shallow.lock", "config.lock", "HEAD.lock")
        stale = [*(repo / name for name in names), *(repo / "refs").rglob("*.lock")]
        for lock in stale:
            with contextlib.suppress(FileNotFoundError):
                if lock.stat().st_mtime < horizon:
                    lock.unlink()
                    log.warning("removed a stale git lock %s", lock)

    # --- what the repository says now
    def resolve_branch(self, url: str, branch: str) -> str:
        """The commit `branch` points at on the remote now (`git ls-remote`); no fetch."""
        ref = f"refs/heads/{branch_name(branch, 'branch')}"
        out = self._git(url, "ls-remote", "--end-of-options", url, ref)
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:  # ls-remote patterns also match refs/heads/x/<ref>
                return commit_id(sha, f"ls-remote {ref}")
        raise BranchGone(f"branch {branch} not found in {url}")

    def remote_heads(self, url: str, branches: list[str]) -> dict[str, str]:
        """Where each of `branches` points on the remote now: one `git ls-remote` for all of
        them (a branch missing from the answer is absent from the result)."""
        refs = {f"refs/heads/{branch_name(b, 'branch')}": b for b in branches}
        out = self._git(url, "ls-remote", "--end-of-options", url, *refs)
        heads = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name in refs:
                heads[refs[name]] = commit_id(sha, f"ls-remote {name}")
        return heads

    def fetch_branch(self, url: str, branch: str) -> str:
        """Fetch the branch ref (its whole history) into the cache; the head it fetched.

        Asks `ls-remote` first, so an unchanged head costs one round trip and no fetch.
        """
        head = self.resolve_branch(url, branch)
        with self._lock(url):
            return self._fetch(url, branch, head)

    def _fetch(self, url: str, branch: str, head: str) -> str:
        repo = self.bare(url)
        ref = f"refs/heads/{branch}"
        if self.has_commit(url, head):
            local = self._run(
                url,
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                ref,
                cwd=repo,
                ok=(0, 1),
            )
            if local.stdout.strip() == head:
                return head
        self._clear_stale_locks(repo)
        options = ["--unshallow"] if (repo / "shallow").exists() else []
        self._git(
            url,
            "fetch",
            "--quiet",
            "--no-tags",
            "--force",
            *options,
            "--end-of-options",
            "origin",
            f"+{ref}:{ref}",
            cwd=repo,
        )
        fetched = self._git(url, "rev-parse", "--verify", "--end-of-options", ref, cwd=repo)
        return commit_id(fetched.strip(), f"fetched {ref}")

    def has_commit(self, url: str, commit: str) -> bool:
        repo = self.bare(url)
        spec = f"{commit_id(commit, 'commit')}^{{commit}}"
        done = self._run(url, "cat-file", "-e", "--end-of-options", spec, cwd=repo, ok=(0, 1, 128))
        return done.returncode == 0

    def relation(self, url: str, current: str | None, head: str) -> Relation:
        """Where `head` (fetched) stands against the branch's current version.

        first: nothing built yet; same; ahead: head descends from current; older: head is an
        ancestor of current; diverged: a force push with a common ancestor; unrelated: no common
        ancestor; missing: current is no longer in the cache (rewritten away and collected).
        """
        if current is None:
            return "first"
        if current == head:
            return "same"
        if not self.has_commit(url, current):
            return "missing"
        if self._is_ancestor(url, current, head):
            return "ahead"
        if self._is_ancestor(url, head, current):
            return "older"
        base = self._run(
            url, "merge-base", "--end-of-options", current, head, cwd=self.bare(url), ok=(0, 1)
        )
        return "diverged" if base.returncode == 0 else "unrelated"

    def _is_ancestor(self, url: str, older: str, newer: str) -> bool:
        done = self._run(
            url,
            "merge-base",
            "--is-ancestor",
            "--end-of-options",
            commit_id(older, "commit"),
            commit_id(newer, "commit"),
            cwd=self.bare(url),
            ok=(0, 1),
        )
        return done.returncode == 0

    def changed_paths(self, url: str, base: str, head: str) -> tuple[str, ...]:
        """Paths that differ between two fetched commits (`git diff --name-only`), sorted."""
        out = self._git(
            url,
            "diff",
            "--name-only",
            "--no-renames",
            "-z",
            "--end-of-options",
            commit_id(base, "base"),
            commit_id(head, "head"),
            cwd=self.bare(url),
        )
        return tuple(sorted(path for path in out.split("\0") if path))

    def resolve_short(self, url: str, branch: str, short: str) -> str:
        """The one commit of `branch`'s history whose id starts with `short`.

        PermanentError when none does or when several do (git's own candidates are quoted).
        """
        self.fetch_branch(url, branch)
        done = self._run(
            url,
            "rev-parse",
            "--verify",
            "--end-of-options",
            f"{short}^{{commit}}",
            cwd=self.bare(url),
            ok=(0, 1, 128),
        )
        if done.returncode == 0:
            return commit_id(done.stdout.strip(), "rev-parse")
        if "ambiguous" in done.stderr:
            raise PermanentError(
                f"version {short} is ambiguous: {git_message(done.stderr)}; give more digits"
            )
        raise PermanentError(f"version {short}: no commit starts with it in {url} ({branch})")

    # --- a tree to build from
    def checkout(self, url: str, commit: str) -> Path:
        """A clean tree of `commit` (fetched once if the cache lacks it, then served cached)."""
        with self._lock(url):
            return self._checkout(url, commit_id(commit, "commit"))

    def _checkout(self, url: str, commit: str) -> Path:
        tree = inside(self.root, "trees", self._key(url), commit)
        if tree.is_dir():
            return tree
        repo = self.bare(url)
        if not self.has_commit(url, commit):
            self._clear_stale_locks(repo)
            self._git(
                url, "fetch", "--quiet", "--no-tags", "--end-of-options", "origin", commit, cwd=repo
            )
        tree.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tree-", dir=tree.parent))
        try:
            archive = staging / "tree.tar"
            self._git(
                url,
                "archive",
                "--format=tar",
                "-o",
                str(archive),
                "--end-of-options",
                commit,
                cwd=repo,
            )
            with tarfile.open(archive) as tar:
                try:
                    tar.extractall(staging / "src", filter="data")
                except tarfile.FilterError as exc:  # a link out of the tree, a device file
                    raise PermanentError(f"commit {commit[:12]} of {url}: {exc}") from exc
            archive.unlink()
            os.replace(staging / "src", tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return tree
