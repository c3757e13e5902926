"""Store faults under the running service: a 2xx is a promise, and nothing hangs.

Real faults, real `serve` processes on SQLite:
- another process holds the database lock (BEGIN EXCLUSIVE): 503 with Retry-After quickly,
  /readyz fails while it lasts, and everything works again once the lock is released;
- the database file is deleted under the service: no delivery is acknowledged after that
  (503), /readyz fails and says why;
- a full disk (a real 3 MB tmpfs under the database, filled): 503s, /readyz fails, SIGTERM
  still stops the process in its grace period, and after a restart with space every
  acknowledged id is listed.
Every request carries a client deadline: an answer that does not come in time fails the test.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from demo.payloads import storage_event
from tests.support.repo import GitRepo, rules_text
from tests.support.server import ServiceProcess, start_service
from tests.support.waiting import wait_for

TOKEN = "storage-token"
STORE_TIMEOUT = 2.0
# A fault must be answered well within this (store timeout + scheduling on a loaded machine).
ANSWER_DEADLINE = 10.0
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@dataclass
class Sender:
    """Posts numbered storage events; remembers each acknowledged id and every other answer."""

    url: str
    acknowledged: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    count: int = 0

    def send(self) -> httpx.Response:
        self.count += 1
        body = json.dumps(storage_event("datasets", f"songs/e-{self.count:05d}.csv", 10))
        started = time.monotonic()
        response = httpx.post(
            f"{self.url}/webhooks/storage", content=body, headers=HEADERS, timeout=ANSWER_DEADLINE
        )
        took = time.monotonic() - started
        assert took < ANSWER_DEADLINE, f"answer took {took:.1f} s"
        self.answers.append(response.status_code)
        if response.status_code == 202:
            self.acknowledged.extend(response.json()["accepted"])
        else:
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) >= 1
        return response


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=ANSWER_DEADLINE)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled pipeline v1\n"}, "init")
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(repo.url, debounce=30, max_wait=60))
    return {
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'store' / 'trigger.db'}",
        "TRIGGER_RULES_PATH": str(rules),
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_STORAGE_TOKEN": TOKEN,
        "TRIGGER_MANUAL_TOKEN": "manual-token",
        "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
        "TRIGGER_RUNS_DIR": str(tmp_path / "runs"),
        "TRIGGER_MODELS_ROOT": str(tmp_path / "models"),
        "TRIGGER_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT),
        "TRIGGER_STORE_PROBE_SECONDS": "0.5",
        "TRIGGER_SHUTDOWN_GRACE_SECONDS": "8",
        "TRIGGER_LOG_JSON": "false",
    }


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    process = start_service(env, tmp_path / "service.log")
    try:
        yield process
    finally:
        process.stop()


def listed(url: str, ids: list[str]) -> list[str]:
    """The ids among `ids` that GET /events/{id} does not find."""
    with httpx.Client(base_url=url, timeout=ANSWER_DEADLINE) as http:
        return [i for i in ids if http.get(f"/events/{i}").status_code != 200]


# Holds the lock until a line arrives on stdin (the test is done with the locked store), or
# for at most argv[2] seconds.
HOLD_LOCK = """
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_locked_by_another_process_answers_503_quickly(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    sender = Sender(service.url)
    assert sender.send().status_code == 202
    database = env["TRIGGER_DATABASE_URL"].removeprefix("sqlite:///")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, database, "25"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        during = [sender.send().status_code for _ in range(3)]
        assert during == [503, 503, 503]
        started = time.monotonic()
        replay = httpx.post(
            f"{service.url}/events/{sender.acknowledged[0]}/replay",
            headers={"Authorization": "Bearer manual-token"},
            timeout=ANSWER_DEADLINE,
        )
        assert time.monotonic() - started < ANSWER_DEADLINE
        assert replay.status_code == 503 and replay.headers["retry-after"], replay.text
        wait_for(
            lambda: readyz(service.url).status_code == 503, "/readyz fails while locked", timeout=8
        )
        assert "locked" in readyz(service.url).json()["checks"]["store"]
    finally:
        assert holder.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a holder that already ended
            holder.stdin.write("release\n")
            holder.stdin.close()
        holder.wait(30)
    wait_for(lambda: readyz(service.url).status_code == 200, "/readyz recovers", timeout=10)
    assert sender.send().status_code == 202
    assert listed(service.url, sender.acknowledged) == []


def test_deleted_database_file_acknowledges_nothing(
    service: ServiceProcess, env: dict[str, str]
) -> None:
    sender = Sender(service.url)
    for _ in range(3):
        assert sender.send().status_code == 202
    database = Path(env["TRIGGER_DATABASE_URL"].removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    after = [sender.send().status_code for _ in range(5)]
    assert after == [503] * 5, "a delivery was acknowledged into a deleted file"
    wait_for(lambda: readyz(service.url).status_code == 503, "/readyz fails", timeout=5)
    # "replaced" when a new connection already created an empty file at the same path
    detail = readyz(service.url).json()["checks"]["store"]
    assert "was deleted" in detail or "was replaced" in detail, detail
    metrics = httpx.get(f"{service.url}/metrics", timeout=ANSWER_DEADLINE).text
    assert "trigger_store_healthy 0.0" in metrics


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave_bytes: int) -> Path:
    """A file taking all the free space of `folder`'s filesystem but `leave_bytes`."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave_bytes
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        while free > 0:
            try:
                free -= out.write(chunk[: min(len(chunk), free)])
            except OSError as exc:  # the service grew its files meanwhile: full already
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler


def test_full_disk_answers_503_stops_on_sigterm_and_loses_nothing(
    env: dict[str, str], tmp_path: Path, tmpfs: Path
) -> None:
    env = {**env, "TRIGGER_DATABASE_URL": f"sqlite:///{tmpfs / 'trigger.db'}"}
    first = start_service(env, tmp_path / "first.log")
    sender = Sender(first.url)
    try:
        for _ in range(5):
            assert sender.send().status_code == 202
        filler = fill(tmpfs, leave_bytes=8192)
        for _ in range(400):  # until the store is full: every answer 202 or 503, in time
            if sender.send().status_code == 503 and sender.answers[-3:] == [503] * 3:
                break
        assert sender.answers[-1] == 503, "the disk never filled"
        wait_for(lambda: readyz(first.url).status_code == 503, "/readyz fails", timeout=8)
        started = time.monotonic()
        first.stop(grace_seconds=15)
        stopped_in = time.monotonic() - started
        assert first.process.returncode in (0, -15, 4), first.log()[-2000:]
        assert stopped_in < 12, f"SIGTERM took {stopped_in:.1f} s"
    finally:
        first.stop()
    os.unlink(filler)
    second = start_service(env, tmp_path / "second.log")
    try:
        assert listed(second.url, sender.acknowledged) == [], "an acknowledged event is lost"
        assert Sender(second.url, count=10_000).send().status_code == 202
    finally:
        second.stop()
    print(f"\n{len(sender.acknowledged)} acknowledged, answers: {sender.answers.count(503)} x 503")
