"""Crash-only ends: a dead worker ends the process; a shutdown that hangs is cut short.

end_process(reason)               SIGTERM to this process (uvicorn shuts down gracefully),
                                  remembered so `serve` exits non-zero for its supervisor
start_shutdown_watchdog(seconds)  os._exit(EXIT_HUNG) if the process still lives by then
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)

EXIT_WORKER_DIED = 3
EXIT_HUNG = 4
fatal: list[str] = []  # why the process ends on its own; empty for a normal stop


def end_process(reason: str) -> None:
    fatal.append(reason)
    log.critical("ending the process so its supervisor restarts it: %s", reason)
    os.kill(os.getpid(), signal.SIGTERM)


def start_shutdown_watchdog(seconds: float) -> None:
    def cut() -> None:
        log.critical("shutdown still not done after %.0f s: exiting now", seconds)
        os._exit(EXIT_HUNG)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()


class GracefulServer(uvicorn.Server):
    """uvicorn's server, with the watchdog armed at the first SIGTERM/SIGINT: the process ends
    within `grace` seconds even if a request, the worker or a backend call hangs."""

    def __init__(self, config: uvicorn.Config, grace: float) -> None:
        super().__init__(config)
        self.grace = grace
        self._armed = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._armed:
            self._armed = True
            start_shutdown_watchdog(self.grace)
        super().handle_exit(sig, frame)
        if fatal:
            # Our own SIGTERM (end_process): uvicorn would raise it again after the shutdown
            # and the process would die of the signal, which systemd counts as a clean stop
            # (no restart). Forget it, so `serve` returns EXIT_WORKER_DIED instead.
            with contextlib.suppress(ValueError, AttributeError):
                self._captured_signals.remove(sig)
