"""A run's log, for `GET /runs/{id}/logs`, the console and `trigger-service logs`.

Local runs write `<runs_dir>/<run>/run.log` (the pipeline's stdout and stderr); it is read from
a byte offset, and followed by reading again as it grows until the run ends. KFP keeps its runs'
logs in its own UI (the run's `url`); shadow runs run nothing and have none.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio

FINISHED = ("succeeded", "failed", "canceled", "lost", "recorded")
CHUNK = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# kfp.local's own lines: "Executing task 'train'" ... "Task 'train' finished with status SUCCESS"
_STARTED = re.compile(r"Executing task '([^']+)'")
_ENDED = re.compile(r"Task '([^']+)' finished with status (\w+)")


def log_file(row: Any, runs_dir: Path) -> Path | None:
    """The log file of a run row, only ever inside `runs_dir`; None for runs without one."""
    if row.backend != "local" or not row.external_id:
        return None
    root = runs_dir.resolve()
    path = (root / str(row.external_id) / "run.log").resolve()
    return path if path.is_relative_to(root) else None


def read_from(path: Path, offset: int, limit: int = CHUNK) -> bytes:
    """Up to `limit` bytes from `offset`; b"" when there is nothing (yet)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except OSError:
        return b""


async def follow(
    path: Path,
    offset: int,
    finished: Callable[[], bool],
    interval: float = 0.5,
    max_seconds: float = 6 * 3600,
) -> AsyncIterator[bytes]:
    """The log from `offset`, then what is appended, until the run has finished and every byte
    is sent (or `max_seconds` pass). `finished` is asked in a worker thread."""
    waited = 0.0
    while True:
        chunk = await anyio.to_thread.run_sync(read_from, path, offset)
        if chunk:
            offset += len(chunk)
            yield chunk
            continue
        if waited >= max_seconds or await anyio.to_thread.run_sync(finished):
            # What the run wrote between the last read and its end, whatever its size.
            while tail := await anyio.to_thread.run_sync(read_from, path, offset):
                offset += len(tail)
                yield tail
            return
        await anyio.sleep(interval)
        waited += interval


def steps(text: str) -> list[dict[str, str]]:
    """The tasks kfp.local reported in a log, in order: [{"task": name, "status": ...}]."""
    found: dict[str, str] = {}
    for line in _ANSI.sub("", text).splitlines():
        if started := _STARTED.search(line):
            found.setdefault(started.group(1), "RUNNING")
        elif ended := _ENDED.search(line):
            found[ended.group(1)] = ended.group(2)
    return [{"task": task, "status": status} for task, status in found.items()]
