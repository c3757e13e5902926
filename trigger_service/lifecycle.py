"""Crash-only ends: a dead worker ends the process; a shutdown that hangs is cut short.

end_process(reason)               SIGTERM to this process (uvicorn shuts down gracefully),
                                  remembered so `serve` exits non-zero for its supervisor
start_shutdown_watchdog(seconds)  os._exit(EXIT_HUNG) if the process still lives by then
head_timeout_protocol(seconds)    uvicorn's h11 protocol, closing a connection whose request
                                  head is not complete within `seconds`
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from types import FrameType

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

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


def head_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request head. uvicorn has none: a client
    that sends part of a head (or trickles it) held its connection, a file descriptor, for ever
    (300 such connections were all still open after 35 s); enough of them exhaust the process's
    descriptors and no webhook gets in. The body has its own deadline (api/intake.py)."""

    class HeadTimeoutProtocol(H11Protocol):
        _head_timer: object = None

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(seconds, self._head_late)

        def _disarm(self) -> None:
            timer, self._head_timer = self._head_timer, None
            if isinstance(timer, asyncio.TimerHandle):
                timer.cancel()

        def _head_late(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # nothing was started: there is no one to answer

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the head is complete

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()  # a kept-alive connection: the next head has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeadTimeoutProtocol
