"""A signed push over HTTP to the service on the embedded default (SQLite, the local backend,
its worker and outbox sender threads) ends on the forge as pending, then success; a failing run
as failure. The local backend runs a stand-in for the pipeline command (the real pipeline is
tests/e2e's business), slow enough that "pending" is seen before the end."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.support.forges import ForgeDouble
from tests.support.github import signature
from tests.support.repo import GitRepo, rules_text
from trigger_service.api import create_app
from trigger_service.service import Services
from trigger_service.settings import Settings
from trigger_service.submit.local import LocalBackend

STAND_IN = """\
import json, pathlib, sys, time
args = sys.argv[1:]
time.sleep(1.5)
ok = "fail.csv" not in " ".join(args)
pathlib.Path(args[args.index("--result-file") + 1]).write_text(json.dumps({
    "status": "succeeded" if ok else "failed", "published": ok, "model_version": 1 if ok else None,
    "reason": "published version 1", "failed_step": None if ok else "validate",
    "error": None if ok else "validation failed: 5 rows"}))
sys.exit(0 if ok else 1)
"""


def push_body(repo: GitRepo, sha: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "repository": {"full_name": "team/songs", "clone_url": repo.url},
            "pusher": {"name": "ana"},
            "commits": [{"id": sha, "added": [], "modified": ["pipeline.yaml"], "removed": []}],
            "head_commit": {"id": sha},
        }
    ).encode()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def services_for(tmp_path: Path, repo: GitRepo, forge: ForgeDouble, data_uri: str) -> Services:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "stand_in.py").write_text(STAND_IN)
    python = bin_dir / "python"  # LocalBackend runs `python -m pipeline run ...`
    python.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {bin_dir / "stand_in.py"} "$@"\n')
    python.chmod(0o755)
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(repo.url).replace("s3://datasets/songs/songs.csv", data_uri))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
        rules_path=rules,
        git_cache_dir=tmp_path / "git-cache",
        models_root=tmp_path / "models",
        runs_dir=tmp_path / "runs",
        github_secret="gh-secret",
        github_api_url=forge.api_url,
        github_api_token="gh-api-token",
        worker_poll_seconds=0.05,
        outbox_poll_seconds=0.05,
    )
    backend = LocalBackend(
        runs_dir=settings.runs_dir,
        models_root=settings.models_root,
        data_dir=settings.data_dir,
        python=str(python),
    )
    return Services.build(settings, backend=backend)


def run_push(tmp_path: Path, data_uri: str) -> tuple[ForgeDouble, str]:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled v1\n"}, "init")
    sha = repo.commit({"pipeline.yaml": "# compiled v2\n"}, "retrain")
    forge = ForgeDouble("github", token="gh-api-token").up()
    forge.add_commit("team/songs", sha)
    services = services_for(tmp_path, repo, forge, data_uri)
    body = push_body(repo, sha)
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": f"delivery-{sha[:8]}",
        "X-Hub-Signature-256": signature(body, "gh-secret"),
        "Content-Type": "application/json",
    }
    try:
        with TestClient(create_app(services, start_worker=True)) as client:
            assert client.post("/webhooks/github", content=body, headers=headers).status_code == 202
            wait_for(lambda: len(forge.posted) >= 1, "the pending status")
            wait_for(lambda: len(forge.posted) >= 2, "the final status")
    finally:
        forge.down()
    return forge, sha


def test_a_push_over_http_ends_pending_then_success(tmp_path: Path) -> None:
    forge, sha = run_push(tmp_path, "songs.csv")
    assert forge.states("team/songs", sha, "retrain/songs") == ["pending", "success"]
    assert forge.posted[0].description.startswith("training: run r-")
    assert forge.posted[1].description == "model songs v1 published"


def test_a_failing_run_over_http_ends_in_failure(tmp_path: Path) -> None:
    forge, sha = run_push(tmp_path, "fail.csv")
    assert forge.states("team/songs", sha, "retrain/songs") == ["pending", "failure"]
    assert forge.posted[1].description == "validate failed: validation failed: 5 rows"
