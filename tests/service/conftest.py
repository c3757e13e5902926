"""Fixtures for the service's own tests: a real git repository, a fake clock, wired services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import ScriptedBackend
from tests.support.repo import GitRepo, rules_text
from trigger_service.service import Services
from trigger_service.settings import Settings


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


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
    def _build(
        rules: str | None = None, database_url: str | None = None, **overrides: Any
    ) -> Services:
        rules_path = tmp_path / "rules.yaml"
        rules_path.write_text(rules if rules is not None else rules_text(repo.url))
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
