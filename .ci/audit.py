"""Known vulnerabilities in the pinned set (constraints.txt), with pip-audit over PyPI's JSON API.

    python .ci/audit.py constraints.txt          run pip-audit, then judge its report
    python .ci/audit.py --report audit.json      judge a report pip-audit already wrote

Exit status:
    0  no vulnerability with a fix in the pinned set
    1  at least one pinned package has a known vulnerability and a fixed version exists
    2  the audit could not run (the index unreachable, pip-audit failed): never a silent pass
    3  with AUDIT_STRICT=1 only: some pinned versions are unknown to the index (not audited)

A pinned version the index does not know (a private build, a mirror's own version) cannot be
audited: it is listed as such on stderr, and fails the run only with AUDIT_STRICT=1 (set it in a
CI that installs from pypi.org). Vulnerabilities without any fix are listed and do not fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def audit(requirements: Path) -> dict[str, Any]:
    """pip-audit's JSON report; SystemExit(2) when pip-audit cannot produce one."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "audit.json"
        command = [
            sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip",
            "-r", str(requirements), "-f", "json", "-o", str(report),
            "--progress-spinner", "off", "--timeout", "30",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if not report.is_file():
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            code = done.returncode
            print(f"audit: pip-audit could not run (exit {code}): {tail}", file=sys.stderr)
            raise SystemExit(2)
        data: dict[str, Any] = json.loads(report.read_text())
        return data


def judge(report: dict[str, Any], strict: bool) -> int:
    fixable, unfixed, unaudited = [], [], []
    for dependency in report.get("dependencies", []):
        version = dependency.get("version")
        name = f"{dependency['name']}=={version}" if version else dependency["name"]
        if "skip_reason" in dependency:
            unaudited.append(name)
        for vuln in dependency.get("vulns", []):
            line = f"{name}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixed.append(f"{line} (no fix yet)")
    audited = len(report.get("dependencies", [])) - len(unaudited)
    for line in unfixed:
        print(f"audit: known vulnerability without a fix: {line}", file=sys.stderr)
    if unaudited:
        print(
            f"audit: WARNING {len(unaudited)} pinned versions are unknown to the index and were "
            f"NOT audited ({', '.join(unaudited[:5])}{', ...' if len(unaudited) > 5 else ''})",
            file=sys.stderr,
        )
    for line in fixable:
        print(f"audit: FAIL {line}", file=sys.stderr)
    total = len(report.get("dependencies", []))
    print(f"audit: {audited} of {total} pinned packages audited, {len(fixable)} fixable vulnerable")
    if fixable:
        return 1
    return 3 if strict and unaudited else 0


def main(argv: list[str]) -> int:
    strict = os.environ.get("AUDIT_STRICT") == "1"
    if argv[:1] == ["--report"]:
        return judge(json.loads(Path(argv[1]).read_text()), strict)
    return judge(audit(Path(argv[0] if argv else "constraints.txt")), strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
