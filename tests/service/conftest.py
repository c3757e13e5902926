"""Fixtures for the service's own tests: a real git repository, a fake clock, wired services."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import ScriptedBackend
from trigger_service.service import Services
from trigger_service.settings import Settings

RULES = """\
policy:
  concurrency: queue-one
pipelines:
  - name: songs
    source:
      repository: {repo}
      branch: main
      package_path: pipeline.yaml
    defaults:
      data_uri: s3://datasets/songs/songs.csv
      model_name: songs
triggers:
  - name: code
    on: code
    pipeline: songs
    branches: [main]
    paths: ["pipeline.yaml", "pipeline/**"]
  - name: new-data
    on: data
    pipeline: songs
    bucket: datasets
    prefix: songs/
    params:
      data_uri: "{{subject.uri}}"
    policy:
      debounce_seconds: 30
      max_wait_seconds: 120
  - name: drift
    on: drift
    pipeline: songs
    alertname: ModelDrift
    labels:
      model: songs
  - name: by-hand
    on: manual
"""


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


class GitRepo:
    """A real repository made by the test, with commits it can add."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.email", "test@example.com")
        git(path, "config", "user.name", "test")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repository = GitRepo(tmp_path / "repo")
    repository.commit({"pipeline.yaml": "# compiled pipeline v1\n", "README.md": "hi\n"}, "init")
    return repository


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


Build = Callable[..., Services]


@pytest.fixture
def build(tmp_path: Path, repo: GitRepo, clock: FakeClock, backend: ScriptedBackend) -> Build:
    def _build(rules: str = RULES, database_url: str | None = None, **overrides: Any) -> Services:
        rules_path = tmp_path / "rules.yaml"
        rules_path.write_text(rules.format(repo=repo.url))
        values: dict[str, Any] = {
            "database_url": database_url or f"sqlite:///{tmp_path / 'trigger.db'}",
            "rules_path": rules_path,
            "backend": "shadow",
            "git_cache_dir": tmp_path / "git-cache",
            "models_root": tmp_path / "models",
            "runs_dir": tmp_path / "runs",
            "manual_token": "manual-token",
            "storage_token": "storage-token",
            "alertmanager_token": "am-token",
            "github_secret": "gh-secret",
            "retry_base_seconds": 1.0,
        }
        settings = Settings(**(values | overrides))
        return Services.build(settings, backend=backend, clock=clock)

    return _build
