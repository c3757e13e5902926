"""Waiting for a `python -m trigger_service serve` process to answer, without fixed sleeps.

Used by the demo and by the tests' and benchmarks' service runner (tests/support/server.py).
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx


class NotReady(RuntimeError):
    """The service exited, or did not answer GET /readyz with 200 in time (the message says)."""


def wait_ready(url: str, process: subprocess.Popen[Any], timeout: float) -> None:
    """Poll GET `url`/readyz every 0.1 s until it answers 200.

    Raises NotReady if `process` exits first ("exited with code N before it was ready") or after
    `timeout` seconds ("not ready after N s (the last answer)").
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise NotReady(f"exited with code {process.returncode} before it was ready")
            try:
                response = client.get(f"{url}/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
    raise NotReady(f"not ready after {timeout:.0f} s ({last})")
