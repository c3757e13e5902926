"""Real `git`, shallow, into a cache: one bare repository per remote, one tree per commit.

HTTPS credentials travel in GIT_CONFIG_* environment variables (an Authorization header), never
in argv or the remote URL, so they appear neither in `ps` nor in error messages.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from trigger_service.errors import PermanentError, TemporaryError

GIT_TIMEOUT = 120.0


class GitCache:
    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root.resolve()  # git runs with other working directories
        self.token = token

    def _env(self, url: str) -> dict[str, str]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
        if self.token and url.startswith("https://"):
            basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
            )
        return env

    def _git(self, url: str, *args: str, cwd: Path | None = None) -> str:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=self._env(url),
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TemporaryError(f"git {args[0]} timed out after {GIT_TIMEOUT:.0f}s") from exc
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
            error = f"git {args[0]} {url}: {message[0]}"
            # Network trouble may pass; a missing commit or repository will not.
            transient = ("Could not resolve host", "timed out", "Connection", "early EOF")
            if any(t in done.stderr for t in transient):
                raise TemporaryError(error)
            raise PermanentError(error)
        return done.stdout

    def bare(self, url: str) -> Path:
        path = self.root / "repos" / hashlib.sha256(url.encode()).hexdigest()[:16]
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            self._git(url, "init", "--bare", "--quiet", str(path))
            self._git(url, "remote", "add", "origin", url, cwd=path)
        return path

    def resolve_branch(self, url: str, branch: str) -> str:
        """The commit a branch points at on the remote now."""
        out = self._git(url, "ls-remote", url, f"refs/heads/{branch}")
        if not out.strip():
            raise PermanentError(f"branch {branch} not found in {url}")
        return out.split()[0]

    def checkout(self, url: str, commit: str) -> Path:
        """A clean tree of `commit` (fetched shallow once, then served from the cache)."""
        tree = self.root / "trees" / hashlib.sha256(url.encode()).hexdigest()[:16] / commit
        if tree.is_dir():
            return tree
        repo = self.bare(url)
        self._git(url, "fetch", "--quiet", "--depth", "1", "origin", commit, cwd=repo)
        tree.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tree-", dir=tree.parent))
        try:
            archive = staging / "tree.tar"
            self._git(url, "archive", "--format=tar", "-o", str(archive), commit, cwd=repo)
            with tarfile.open(archive) as tar:
                tar.extractall(staging / "src", filter="data")
            archive.unlink()
            os.replace(staging / "src", tree)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return tree
