"""What the operator sees of the rules file: which content is loaded, and the last edit refused.

A refused edit keeps the previous rules running; this record is how `GET /rules`, the console
and `trigger-service status` show it instead of one log line.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Refusal:
    at: float  # epoch seconds
    error: str
    sha256: str | None  # of the refused content


@dataclass
class RulesStatus:
    path: Path
    sha256: str | None = None  # of the content loaded
    loaded_at: float | None = None
    last_refused: Refusal | None = None
    # The file's commit is asked of git only when someone reads it (GET /rules, the console):
    # loading rules or handling a webhook starts no git process.
    _commit: str | None = field(default=None, repr=False)
    _commit_known: bool = field(default=False, repr=False)

    @property
    def commit(self) -> str | None:
        """The last git commit of the loaded file, when it is in a work tree; else None."""
        if not self._commit_known:
            self._commit = _commit(self.path)
            self._commit_known = True
        return self._commit

    def loaded(self, now: float) -> None:
        self.sha256 = _sha256(self.path)
        self.loaded_at = now
        self._commit_known = False  # asked again on the next read
        # last_refused is kept: a refusal stays visible after a later good edit, as history.

    def refused(self, now: float, error: str) -> None:
        self.last_refused = Refusal(now, error, _sha256(self.path))


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _commit(path: Path) -> str | None:
    """`git log -1` of the file; None outside a work tree or without git (never an error)."""
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
