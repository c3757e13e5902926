"""The rules file's status asks git for the file's commit only when it is read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from trigger_service.rules import status as status_module
from trigger_service.rules.status import RulesStatus


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_the_commit_is_looked_up_on_read_once_per_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git(tmp_path, "init", "-q")
    rules = tmp_path / "rules.yaml"
    rules.write_text("pipelines: []\n")
    _git(tmp_path, "add", "rules.yaml")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    asked: list[Path] = []
    real = status_module._commit

    def recording(path: Path) -> str | None:
        asked.append(path)
        return real(path)

    monkeypatch.setattr(status_module, "_commit", recording)

    status = RulesStatus(rules)
    status.loaded(1.0)
    assert asked == []  # loading starts no git process

    assert status.commit == _git(tmp_path, "rev-parse", "HEAD")
    assert status.commit == _git(tmp_path, "rev-parse", "HEAD")
    assert asked == [rules]  # asked once, then kept

    rules.write_text("pipelines: []\ntriggers: []\n")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    status.loaded(2.0)
    assert status.commit == _git(tmp_path, "rev-parse", "HEAD")  # a reload asks again
    assert len(asked) == 2


def test_outside_a_work_tree_the_commit_is_none(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("pipelines: []\n")
    status = RulesStatus(rules)
    status.loaded(1.0)
    assert status.commit is None
    assert status.sha256 is not None
