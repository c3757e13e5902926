"""The real service over HTTP for GitOps tests: a git spy on its PATH, signed push deliveries.

    service = GitOpsService.start(tmp_path, repo, rules=...)   # `serve` as a subprocess
    service.push_github(payload, delivery="d1")                 # signed like GitHub signs
    service.git_calls()                                         # every git argv it ran
    service.wait_for(lambda: ..., what="...")                    # poll the service's answers

The spy is a `git` script first on the service's PATH that appends its argv (one JSON list a
line) to a file and runs the real git: a test can assert that no git process started.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.github import signature
from tests.support.repo import GitRepo, git
from tests.support.server import ServiceProcess, start_service
from tests.support.waiting import wait_for

GITHUB_SECRET = "gh-secret"
GITLAB_TOKEN = "gl-token"
GITEA_SECRET = "gitea-secret"
MANUAL_TOKEN = "manual-token"
T = TypeVar("T")

SPY = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({git!r}, ["git", *sys.argv[1:]])
"""


def install_git_spy(folder: Path) -> Path:
    """A folder holding a recording `git`; returns the log file it appends to."""
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "git-calls.jsonl"
    real = shutil.which("git")
    assert real is not None, "git is not installed"
    spy = folder / "git"
    spy.write_text(SPY.format(python=sys.executable, log=str(log), git=real))
    spy.chmod(0o755)
    return log


def push_payload(
    repo: GitRepo,
    after: str,
    before: str = "0" * 40,
    paths: list[str] | None = None,
    branch: str = "main",
) -> dict[str, Any]:
    """A GitHub push body for `repo`: `paths` become the (hint) file list of one commit."""
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": before == "0" * 40,
        "deleted": False,
        "repository": {"full_name": "team/songs", "clone_url": repo.url},
        "pusher": {"name": "ana"},
        "commits": [{"id": after, "added": [], "modified": paths or [], "removed": []}],
        "head_commit": {"id": after},
    }


@dataclass
class GitOpsService:
    process: ServiceProcess
    spy_log: Path
    client: httpx.Client

    @classmethod
    def start(cls, tmp_path: Path, rules: str, extra_env: dict[str, str] | None = None) -> Any:
        import os

        spy_log = install_git_spy(tmp_path / "spy")
        (tmp_path / "rules.yaml").write_text(rules)
        env = {
            "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
            "TRIGGER_RULES_PATH": str(tmp_path / "rules.yaml"),
            "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
            "TRIGGER_BACKEND": "shadow",
            "TRIGGER_GITHUB_SECRET": GITHUB_SECRET,
            "TRIGGER_GITLAB_TOKEN": GITLAB_TOKEN,
            "TRIGGER_GITEA_SECRET": GITEA_SECRET,
            "TRIGGER_MANUAL_TOKEN": MANUAL_TOKEN,
            "TRIGGER_WORKER_POLL_SECONDS": "0.05",
            "TRIGGER_LOG_JSON": "false",
            "PATH": f"{tmp_path / 'spy'}{os.pathsep}{os.environ.get('PATH', '')}",
            **(extra_env or {}),
        }
        process = start_service(env, tmp_path / "service" / "service.log")
        client = httpx.Client(
            base_url=process.url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {MANUAL_TOKEN}"},
        )
        return cls(process, spy_log, client)

    def stop(self) -> None:
        self.client.close()
        self.process.stop()

    # --- deliveries, signed as each forge signs
    def push_github(self, payload: Any, delivery: str | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature(body, GITHUB_SECRET),
            "Content-Type": "application/json",
        }
        return self.client.post("/webhooks/github", content=body, headers=headers)

    def push_gitlab(self, payload: Any, event: str = "Push Hook") -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "X-Gitlab-Event": event,
            "X-Gitlab-Token": GITLAB_TOKEN,
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        return self.client.post("/webhooks/gitlab", content=body, headers=headers)

    def push_gitea(self, payload: Any, header_prefix: str = "Gitea") -> httpx.Response:
        import hashlib
        import hmac

        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        digest = hmac.new(GITEA_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            f"X-{header_prefix}-Event": "push",
            f"X-{header_prefix}-Delivery": str(uuid.uuid4()),
            f"X-{header_prefix}-Signature": digest,
            "Content-Type": "application/json",
        }
        return self.client.post("/webhooks/gitea", content=body, headers=headers)

    def manual(self, body: Any) -> httpx.Response:
        return self.client.post("/trigger", json=body)

    # --- what the service did
    def git_calls(self) -> list[list[str]]:
        if not self.spy_log.exists():
            return []
        return [json.loads(line) for line in self.spy_log.read_text().splitlines()]

    def events(self) -> list[dict[str, Any]]:
        return list(self.client.get("/events", params={"limit": 500}).json()["items"])

    def decisions(self) -> list[dict[str, Any]]:
        items = self.client.get("/decisions", params={"limit": 500}).json()["items"]
        return sorted(items, key=lambda d: d["created_at"])

    def decisions_of(self, event_id: str) -> list[dict[str, Any]]:
        """The decisions an event ended in (empty while it is not decided)."""
        ids = self.client.get(f"/events/{event_id}").json().get("decisions") or []
        return [self.client.get(f"/decisions/{d}").json() for d in ids]

    def runs(self) -> list[dict[str, Any]]:
        items = self.client.get("/runs", params={"limit": 500}).json()["items"]
        return sorted(items, key=lambda r: r["created_at"])

    def current_version(self, pipeline: str = "songs", branch: str = "main") -> str | None:
        for item in self.client.get("/pipelines").json()["items"]:
            for row in item["current"]:
                if row["pipeline"] == pipeline and row["branch"] == branch:
                    return str(row["version"])
        return None

    def settled(self) -> bool:
        """Every event decided and no decision still on its way to a run."""
        if any(e["status"] in ("pending", "claimed") for e in self.events()):
            return False
        busy = ("collecting", "ready", "submitting", "queued")
        return not any(d["state"] in busy for d in self.decisions())

    def wait_for(self, check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
        return wait_for(check, what, timeout, interval=0.05, log=self.log_tail)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.process.log().splitlines()[-lines:])


def force_push(repo: GitRepo, files: dict[str, str], message: str = "rewritten") -> str:
    """Rewrite main as one new root commit (no common ancestor with what was there)."""
    git(repo.path, "checkout", "-q", "--orphan", "rewrite")
    git(repo.path, "rm", "-rq", "--cached", ".")
    for name, text in files.items():
        target = repo.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo.path, "add", "-A")
    git(repo.path, "commit", "-q", "-m", message)
    git(repo.path, "branch", "-M", "rewrite", "main")
    return git(repo.path, "rev-parse", "HEAD")
