"""A newcomer outside `make run`: the starter rules file at the repository root works on the
embedded default, and a missing rules file is one line, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server import REPO_ROOT, running_service
from trigger_service.events import EventKind
from trigger_service.rules import check_rules, load_rules

STARTER = REPO_ROOT / "rules.yaml"


def cli(
    *args: str, cwd: Path, env: dict[str, str], stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    return subprocess.run(
        [sys.executable, "-m", "trigger_service", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(REPO_ROOT), **env},
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_starter_rules_file_is_valid_and_names_this_repository() -> None:
    assert check_rules(STARTER) == []
    rules = load_rules(STARTER)
    (pipeline,) = rules.pipelines
    assert Path(pipeline.source.repository) == REPO_ROOT  # "." is the file's own repository
    assert pipeline.source.module == "pipeline"
    assert {t.on for t in rules.triggers} == {k.value for k in EventKind}


def test_explain_from_the_repository_root_uses_the_starter(tmp_path: Path) -> None:
    env = {"TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}"}
    done = cli("explain", "manual", "-", cwd=REPO_ROOT, env=env, stdin=b'{"pipeline": "songs"}')
    assert done.returncode == 0, done.stderr
    (answer,) = json.loads(done.stdout)
    assert answer["run"] is True and answer["matches"][0]["trigger"] == "by-hand"


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["explain", "manual", "-"]])
def test_a_missing_rules_file_is_one_line(tmp_path: Path, command: list[str]) -> None:
    env = {"TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}"}
    done = cli(*command, cwd=tmp_path, env=env, stdin=b'{"pipeline": "songs"}')
    assert done.returncode == 2
    # serve and worker lead every configuration error with "refusing to start: " (issue 12)
    lead = "error: " if command[0] == "explain" else "refusing to start: "
    assert done.stderr.splitlines() == [
        f"{lead}no rules file at rules.yaml (set TRIGGER_RULES_PATH; a starter is rules.yaml "
        "at the repository root)"
    ]
    assert not (tmp_path / "trigger.db").exists()


def test_explain_refuses_a_bad_header_or_an_unreadable_payload_in_one_line(tmp_path: Path) -> None:
    env = {"TRIGGER_RULES_PATH": str(STARTER), "TRIGGER_DATABASE_URL": "sqlite://"}
    bad_header = cli("explain", "manual", "-", "-H", "no-colon", cwd=tmp_path, env=env)
    assert bad_header.returncode == 2 and len(bad_header.stderr.splitlines()) == 1
    missing = cli("explain", "manual", str(tmp_path / "nope.json"), cwd=tmp_path, env=env)
    assert missing.returncode == 2
    assert (
        missing.stderr.strip().startswith("error: cannot read")
        and "Traceback" not in missing.stderr
    )


@pytest.mark.slow
def test_serve_starts_on_the_starter_rules(tmp_path: Path) -> None:
    env = {
        "TRIGGER_RULES_PATH": str(STARTER),
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
        "TRIGGER_MANUAL_TOKEN": "t",
    }
    with running_service(env, tmp_path / "service.log") as service:
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        explained = httpx.post(
            f"{service.url}/explain",
            json={"source": "manual", "payload": {"pipeline": "songs"}},
            headers={"Authorization": "Bearer t"},
        )
        assert explained.status_code == 200 and explained.json()["explanations"][0]["run"]
        assert service.error_lines() == []
