"""Configuration mistakes end in one line naming the variable, exit status 2, no traceback and
no part of any secret; unknown TRIGGER_* variables are warned about; every secret has *_FILE."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.repo import GitRepo, rules_text
from trigger_service.settings import SettingsError, load_settings, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-4f9a0c1e77d2b6"


def run(tmp_path: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("TRIGGER_", "KF_"))}
    child.update(
        {
            "PYTHONPATH": str(ROOT),
            "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
            "TRIGGER_GITHUB_SECRET": SECRET,
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "trigger_service", command],
        cwd=tmp_path,
        env=child,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled\n"}, "init")
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(repo.url))
    return path


@pytest.mark.parametrize(
    ("command", "env", "names"),
    [
        ("serve", {"TRIGGER_RULES_PATH": "missing.yaml"}, "TRIGGER_RULES_PATH"),
        ("serve", {"TRIGGER_PORT": SECRET}, "TRIGGER_PORT"),
        ("serve", {"TRIGGER_PORT": "eighty"}, "TRIGGER_PORT"),
        (
            "serve",
            {"TRIGGER_GITEA_SECRET_FILE": "/nonexistent/secret"},
            "TRIGGER_GITEA_SECRET_FILE",
        ),
        ("serve", {"TRIGGER_KFP_TOKEN_FILE": "/nonexistent/token"}, "TRIGGER_KFP_TOKEN_FILE"),
        ("serve", {"TRIGGER_BACKEND": "kfp"}, "TRIGGER_KFP_HOST"),
        ("serve", {"TRIGGER_BACKEND": SECRET}, "TRIGGER_BACKEND"),
        ("serve", {"TRIGGER_LOG_JSON": SECRET}, "TRIGGER_LOG_JSON"),
        ("worker", {"TRIGGER_RULES_PATH": "missing.yaml"}, "TRIGGER_RULES_PATH"),
        ("serve", {"TRIGGER_DATABASE_URL": "nonsense"}, "TRIGGER_DATABASE_URL"),
        ("serve", {"TRIGGER_MAX_UNVERIFIED_BYTES": "1000"}, "TRIGGER_MAX_UNVERIFIED_BYTES"),
        ("serve", {"TRIGGER_PORT": "99999"}, "TRIGGER_PORT"),  # was uvicorn's traceback
        ("serve", {"TRIGGER_PORT": "0"}, "TRIGGER_PORT"),
    ],
)
def test_a_configuration_error_is_one_line_naming_the_variable(
    tmp_path: Path, rules: Path, command: str, env: dict[str, str], names: str
) -> None:
    done = run(tmp_path, command, **{"TRIGGER_RULES_PATH": str(rules), **env})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    # A missing rules file has its own line (shared with `explain`, see test_starter).
    assert lines[0].startswith(("refusing to start: ", "error: no rules file at "))
    assert names in lines[0]
    assert "Traceback" not in done.stderr
    assert SECRET[:4] not in done.stderr + done.stdout


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_store_at_start_is_one_line_without_its_password(
    tmp_path: Path, rules: Path, command: str
) -> None:
    """Was a SQLAlchemy traceback. The URL's password never appears."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://trigger:{SECRET}@127.0.0.1:{port}/trigger"
    done = run(tmp_path, command, TRIGGER_RULES_PATH=str(rules), TRIGGER_DATABASE_URL=url)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cannot start: the store (TRIGGER_DATABASE_URL): ")
    assert "refused" in lines[0]
    assert SECRET[:4] not in done.stderr + done.stdout


def test_a_worker_with_a_bad_rules_file_says_where(tmp_path: Path, rules: Path) -> None:
    rules.write_text("pipelines: []\n")
    done = run(tmp_path, "worker", TRIGGER_RULES_PATH=str(rules))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "rules.yaml" in line and "pipelines" in line


def test_a_misspelt_variable_is_warned_about_with_the_nearest_name() -> None:
    warnings = unknown_variables(
        {"TRIGGER_GITHUB_SECERT": "x", "TRIGGER_PORT": "1", "TRIGGER_ZZZZZZ": "x", "HOME": "/"}
    )
    assert warnings == [
        "unknown setting TRIGGER_GITHUB_SECERT is ignored; did you mean TRIGGER_GITHUB_SECRET?",
        "unknown setting TRIGGER_ZZZZZZ is ignored",
    ]
    assert (
        unknown_variables({"KF_PIPELINES_SA_TOKEN_PATH": "x", "TRIGGER_KFP_TOKEN_PATH": "x"}) == []
    )


def test_the_service_logs_the_warning_at_start(tmp_path: Path) -> None:
    # A missing rules file stops it right after the warning.
    done = run(tmp_path, "worker", TRIGGER_RULES_PATH="missing.yaml", TRIGGER_GITHUB_SECERT="oops")
    assert "did you mean TRIGGER_GITHUB_SECRET?" in done.stderr


@pytest.mark.parametrize(
    "name", ["s3_access_key", "s3_secret_key", "kfp_token", "git_token", "manual_token"]
)
def test_every_secret_has_a_file_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    for key in [k for k in os.environ if k.startswith("TRIGGER_")]:
        monkeypatch.delenv(key)
    secret = tmp_path / "secret"
    secret.write_text(f"{SECRET}\n")
    monkeypatch.setenv(f"TRIGGER_{name.upper()}_FILE", str(secret))
    settings = load_settings()
    assert getattr(settings, name).get_secret_value() == SECRET


def test_an_error_in_code_built_settings_names_the_field_without_its_value() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(port=SECRET)
    assert str(caught.value).startswith("TRIGGER_PORT: ")
    assert SECRET not in str(caught.value)
