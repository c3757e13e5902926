"""Backup and restore of the embedded SQLite store with SQLite's online backup API: consistent
while the service runs (WAL included), no `sqlite3` tool needed in the image. PostgreSQL stores
are backed up with the database's own tools (pg_dump), not here.

`-` as a path streams the copy through stdout/stdin, so `kubectl exec` can move it without
`kubectl cp` (which needs tar in the image) and without writing next to the live database.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

# Tables every trigger-service store has: a restore refuses a file without them.
REQUIRED_TABLES = frozenset({"events", "decisions", "runs"})


class BackupError(Exception):
    """The store is not SQLite, or a backup file is not a sound trigger-service database."""


def sqlite_path(database_url: str) -> Path:
    """The file of a `sqlite:///...` URL.

    Raises:
        BackupError: another backend, or an in-memory database.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"the store is {url.get_backend_name()}, not SQLite: back it up with its own tools "
            "(pg_dump for PostgreSQL)"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("the store is an in-memory SQLite database: nothing to back up")
    return Path(url.database)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    with sqlite3.connect(target) as dest:
        source.backup(dest)
    dest.close()


def backup(database_url: str, destination: str) -> int:
    """Copy the live store to `destination` (a path, or `-` for stdout); returns bytes written.

    Raises:
        BackupError: not an SQLite store, or the store file does not exist.
    """
    path = sqlite_path(database_url)
    if not path.is_file():
        raise BackupError(f"no store at {path}")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        if destination != "-":
            target = Path(destination)
            if target.resolve() == path.resolve():
                raise BackupError("the backup file must not be the store itself")
            target.unlink(missing_ok=True)
            _copy(source, target)
            return target.stat().st_size
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "backup.db"
            _copy(source, target)
            with target.open("rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return target.stat().st_size
    finally:
        source.close()


def check_backup(path: Path) -> None:
    """Raises BackupError unless `path` is an intact SQLite file with the store's tables."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (verdict,) = conn.execute("PRAGMA integrity_check").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not an SQLite database: {exc}") from exc
    if verdict != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {verdict}")
    missing = REQUIRED_TABLES - tables
    if missing:
        names = ", ".join(sorted(missing))
        raise BackupError(f"{path} is not a trigger-service store (no {names})")


def restore(database_url: str, source: str) -> None:
    """Replace the store's content with a backup (a path, or `-` for stdin), checked first.

    Safe against the running service's connections (the backup API takes the store's write
    lock); restart the service afterwards so no process keeps state from before.

    Raises:
        BackupError: not an SQLite store, or the backup is unreadable or not a store.
    """
    path = sqlite_path(database_url)
    with tempfile.TemporaryDirectory() as tmp:
        if source == "-":
            staged = Path(tmp) / "restore.db"
            with staged.open("wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f)
        else:
            staged = Path(source)
            if not staged.is_file():
                raise BackupError(f"no backup file at {staged}")
        check_backup(staged)
        path.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{staged}?mode=ro", uri=True)
        try:
            with sqlite3.connect(path, timeout=30) as dest:
                src.backup(dest)
            dest.close()
        finally:
            src.close()
