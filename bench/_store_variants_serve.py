"""PROTOTYPE for bench/store_variants_bench.py only: `serve` with Inbox.store patched in-process.

Not a change to the service: it shows what two ways of writing the inbox would give.
    STORE_VARIANT=lock   a process-wide lock around Inbox.store (no SQLite busy-wait backoff)
    STORE_VARIANT=group  group commit: one writer thread commits every store waiting at that
                         moment in one transaction (one fsync), then answers each caller
    (unset)              the service as it is
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trigger_service.events import Event
from trigger_service.inbox.store import Inbox, StoreResult, insert_events


def insert_all(inbox: Inbox, conn: Any, batch: Sequence[Event]) -> list[StoreResult]:
    """The inbox's own insert, on a caller's connection (the group's one transaction)."""
    return insert_events(conn, batch)


def patch(variant: str) -> None:
    original = Inbox.store
    if variant == "lock":
        lock = threading.Lock()

        def locked(self: Inbox, batch: Sequence[Event]) -> list[StoreResult]:
            with lock:
                return original(self, batch)

        Inbox.store = locked  # type: ignore[method-assign]
    elif variant == "group":
        pending: queue.Queue[tuple[Sequence[Event], Future[list[StoreResult]]]] = queue.Queue()
        started: list[threading.Thread] = []

        def writer(inbox: Inbox) -> None:
            while True:
                items = [pending.get()]
                while True:
                    try:
                        items.append(pending.get_nowait())
                    except queue.Empty:
                        break
                try:
                    with inbox.engine.begin() as conn:
                        results = [insert_all(inbox, conn, batch) for batch, _ in items]
                except Exception as exc:  # prototype: fail the whole group
                    for _, future in items:
                        future.set_exception(exc)
                    continue
                for (_, future), result in zip(items, results, strict=True):
                    future.set_result(result)

        def grouped(self: Inbox, batch: Sequence[Event]) -> list[StoreResult]:
            if not started:
                started.append(threading.Thread(target=writer, args=(self,), daemon=True))
                started[0].start()
            future: Future[list[StoreResult]] = Future()
            pending.put((batch, future))
            return future.result()

        Inbox.store = grouped  # type: ignore[method-assign]


if __name__ == "__main__":
    patch(os.environ.get("STORE_VARIANT", ""))
    from trigger_service.cli import main

    sys.exit(main())
