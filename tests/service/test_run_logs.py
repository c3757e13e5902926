"""Reading a run's log: whole files in chunks, following a growing file until the run ends, and
kfp.local's task lines as step progress."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import anyio

from trigger_service.tracking import logs


async def _collect(path: Path, offset: int, finished) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([chunk async for chunk in logs.follow(path, offset, finished, 0.05)])


def test_a_large_log_is_read_whole_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    content = b"".join(f"line {n}\n".encode() for n in range(40_000))  # > 4 chunks
    path.write_bytes(content)
    assert anyio.run(_collect, path, 0, lambda: True) == content
    assert anyio.run(_collect, path, 100, lambda: True) == content[100:]


def test_following_reads_what_is_appended_until_the_run_ends(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"first\n")
    ended = threading.Event()

    def writer() -> None:
        for n in range(5):
            time.sleep(0.05)
            with path.open("ab") as out:
                out.write(f"more {n}\n".encode())
        ended.set()

    threading.Thread(target=writer).start()
    got = anyio.run(_collect, path, 0, ended.is_set)
    assert got == b"first\n" + b"".join(f"more {n}\n".encode() for n in range(5))


def test_everything_written_as_the_run_ends_is_sent(tmp_path: Path) -> None:
    """More than one chunk written between the last read and the run's end: all of it."""
    path = tmp_path / "run.log"
    path.write_bytes(b"start\n")
    last = b"".join(f"last words {n}\n".encode() for n in range(20_000))  # > 3 chunks

    def finished() -> bool:
        with path.open("ab") as out:
            out.write(last)
        return True

    assert anyio.run(_collect, path, 0, finished) == b"start\n" + last


def test_log_file_is_only_for_local_runs_inside_the_runs_folder(tmp_path: Path) -> None:
    run = SimpleNamespace(backend="local", external_id="songs-d-1")
    assert logs.log_file(run, tmp_path) == (tmp_path / "songs-d-1" / "run.log").resolve()
    escaping = SimpleNamespace(backend="local", external_id="../../etc")
    assert logs.log_file(escaping, tmp_path) is None
    assert logs.log_file(SimpleNamespace(backend="kfp", external_id="x"), tmp_path) is None


def test_steps_follow_kfp_local_task_lines() -> None:
    text = (
        "Executing task '\x1b[96mfetch-data\x1b[0m'\n"
        "Task '\x1b[96mfetch-data\x1b[0m' finished with status \x1b[92mSUCCESS\x1b[0m\n"
        "Executing task 'train-model'\n"
        "Pipeline 'songs' finished with status FAILURE\n"
    )
    assert logs.steps(text) == [
        {"task": "fetch-data", "status": "SUCCESS"},
        {"task": "train-model", "status": "RUNNING"},
    ]
