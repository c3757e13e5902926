"""The pinned-set audit's verdict on pip-audit reports (.ci/audit.py --report): a vulnerability
with a fix fails, one without a fix is listed, versions the index does not know are named as not
audited (and fail with AUDIT_STRICT=1), and an audit that cannot run never passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"


def judge(tmp_path: Path, report: dict, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def vuln(fixes: list[str]) -> dict:
    return {"id": "PYSEC-2099-1", "fix_versions": fixes, "aliases": [], "description": "x"}


def test_a_vulnerability_with_a_fix_fails(tmp_path: Path) -> None:
    report = {"dependencies": [{"name": "requests", "version": "2.25.0",
                                "vulns": [vuln(["2.31.0"])]}], "fixes": []}  # fmt: skip
    done = judge(tmp_path, report)
    assert done.returncode == 1
    assert "FAIL requests==2.25.0: PYSEC-2099-1 (fixed in 2.31.0)" in done.stderr


def test_a_vulnerability_without_a_fix_is_listed_and_passes(tmp_path: Path) -> None:
    report = {"dependencies": [{"name": "a", "version": "1", "vulns": [vuln([])]}], "fixes": []}
    done = judge(tmp_path, report)
    assert done.returncode == 0
    assert "without a fix: a==1" in done.stderr


@pytest.mark.parametrize(("strict", "code"), [("0", 0), ("1", 3)])
def test_versions_the_index_does_not_know_are_named_as_not_audited(
    tmp_path: Path, strict: str, code: int
) -> None:
    report = {
        "dependencies": [
            {"name": "b", "skip_reason": "Dependency not found on PyPI and could not be audited"},
            {"name": "c", "version": "2", "vulns": []},
        ],
        "fixes": [],
    }
    done = judge(tmp_path, report, AUDIT_STRICT=strict)
    assert done.returncode == code
    assert "1 pinned versions are unknown to the index and were NOT audited (b)" in done.stderr
    assert "1 of 2 pinned packages audited" in done.stdout


def test_an_unreachable_index_is_not_a_pass(tmp_path: Path) -> None:
    requirements = tmp_path / "constraints.txt"
    requirements.write_text("requests==2.25.0\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(requirements)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
        },
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "could not run" in done.stderr
