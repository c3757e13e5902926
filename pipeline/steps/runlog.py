"""What a person watching a run sees of each step, and how a local run learns why a step failed.

Each component body runs inside `step("name")`: it prints the step's start and its end with the
elapsed seconds (flushed, since the output is a pipe), and when a step raises, appends
{"step", "error"} as a JSON line to the file named by PIPELINE_FAILURE_FILE. `pipeline run
--local` sets that variable (task subprocesses inherit it) to put the message in its result
file; on a cluster it is unset and KFP shows the traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator

FAILURE_FILE_ENV = "PIPELINE_FAILURE_FILE"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    say(f"[pipeline] {name}: started")
    try:
        yield
    except Exception as error:
        elapsed = time.monotonic() - started
        say(f"[pipeline] {name}: FAILED after {elapsed:.1f} s: {error}")
        failure_file = os.environ.get(FAILURE_FILE_ENV)
        if failure_file:
            with open(failure_file, "a") as handle:
                handle.write(json.dumps({"step": name, "error": str(error)}) + "\n")
        raise
    say(f"[pipeline] {name}: finished in {time.monotonic() - started:.1f} s")
