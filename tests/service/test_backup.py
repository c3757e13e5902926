"""`trigger-service backup` / `restore`: SQLite's online backup API, with the service's own
code (the image has no sqlite3 tool), against a live store; through stdout/stdin as well."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trigger_service import backup
from trigger_service.database import create_schema, make_engine
from trigger_service.events import Event, EventKind, ManualSubject
from trigger_service.inbox import Inbox

REPO = Path(__file__).resolve().parents[2]


def _store(url: str, ids: list[str]) -> Inbox:
    engine = make_engine(url)
    create_schema(engine)
    inbox = Inbox(engine)
    now = datetime.now(UTC)
    inbox.store([Event(i, EventKind.MANUAL, "manual", ManualSubject("songs"), now) for i in ids])
    return inbox


def _cli(args: list[str], url: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    env.update(TRIGGER_DATABASE_URL=url, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "trigger_service", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_backup_while_open_and_restore_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trigger.db'}"
    inbox = _store(url, ["a", "b"])
    with inbox.engine.connect():  # the service holds the store open (WAL) meanwhile
        done = _cli(["backup", str(tmp_path / "copy.db")], url)
        assert done.returncode == 0, done.stderr
        streamed = _cli(["backup", "-"], url)
        assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.startswith(b"SQLite format 3\x00")
    _store(url, ["c"])  # a later event, lost by the restore below
    restored = _cli(["restore", "-"], url, stdin=streamed.stdout)
    assert restored.returncode == 0, restored.stderr
    assert sorted(e["id"] for e in inbox.list()) == ["a", "b"]
    inbox.store([Event("d", EventKind.MANUAL, "manual", ManualSubject("songs"), datetime.now(UTC))])
    assert _cli(["restore", str(tmp_path / "copy.db")], url).returncode == 0
    assert sorted(e["id"] for e in inbox.list()) == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database at all" * 100, "not an SQLite database"),
        (None, "not a trigger-service store"),
    ],
)
def test_restore_refuses_what_is_not_a_store(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'trigger.db'}"
    inbox = _store(url, ["keep"])
    bad = tmp_path / "bad.db"
    if content is None:
        with sqlite3.connect(bad) as conn:
            conn.execute("CREATE TABLE other (x)")
        conn.close()
    else:
        bad.write_bytes(content)
    done = _cli(["restore", str(bad)], url)
    assert done.returncode == 2 and message in done.stderr.decode()
    assert [e["id"] for e in inbox.list()] == ["keep"]  # untouched


def test_postgres_and_memory_stores_are_refused_with_the_reason() -> None:
    with pytest.raises(backup.BackupError, match="pg_dump"):
        backup.sqlite_path("postgresql+psycopg://u:p@db/t")
    with pytest.raises(backup.BackupError, match="in-memory"):
        backup.sqlite_path("sqlite://")


def test_backup_refuses_to_overwrite_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trigger.db'}"
    _store(url, ["x"])
    with pytest.raises(backup.BackupError, match="must not be the store"):
        backup.backup(url, str(tmp_path / "." / "trigger.db"))
