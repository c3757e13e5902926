"""Waiting for something another process or thread does, without fixed sleeps.

    run_id = wait_for(lambda: decision()["run_id"], "the decision's run", timeout=30)

`wait_for` polls `check` every `interval` seconds and returns its first truthy value; after
`timeout` seconds it fails the test with an AssertionError naming `what` (and the last lines of
`log`, a file or a callable giving text, when the thing waited on writes one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T],
    what: str = "the condition",
    timeout: float = 60.0,
    *,
    interval: float = 0.1,
    log: Path | Callable[[], str] | None = None,
) -> T:
    """Poll `check` until it returns a truthy value and return that value.

    Raises AssertionError("timed out after N s waiting for <what>", plus the log's tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{_tail(log)}")
        time.sleep(interval)


def _tail(log: Path | Callable[[], str] | None, chars: int = 2000) -> str:
    if log is None:
        return ""
    try:
        text = log.read_text(errors="replace") if isinstance(log, Path) else log()
    except OSError as exc:
        text = f"(log unreadable: {exc})"
    return f"; log tail:\n{text[-chars:]}"
