"""The outbox sender: a loop in the worker that delivers due outbox rows through their channel.

Each pass claims due rows with a lease (so two workers never send one row at once, and a
worker killed mid-send leaves a row another takes again), then calls the channel's `deliver`:

    delivered              -> state delivered, the channel's answer kept as `result`
    TemporaryError(delay)  -> pending again after exponential backoff with full jitter, never
                              sooner than the server's Retry-After / rate-limit reset; an
                              outage delays delivery and loses nothing (no attempt limit)
    PermanentError         -> dropped, with a log line and trigger_outbox_total{outcome=dropped}
    a channel not configured any more -> dropped the same way

Before each row of a claimed batch, once half its lease is gone, the claim is renewed: a slow
channel can outlast the lease of the rows behind it, and a row whose lease ran out may already
be another worker's (sending it too would post it twice). After a TemporaryError the channel's
rows claimed before that retry time go back untried until then: a forge that hangs costs one
timeout per retry, not one per row, and cannot hold up the other channels' rows behind it.

Settled rows are kept KEEP_SECONDS (30 days: the run's lineage shows them), then purged, at
most once an hour. A status re-sent after that is harmless (the forge shows it again).

Delivery never blocks deciding or submitting: the sender has its own thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sqlalchemy import Engine

from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.metrics import OUTBOX_ITEMS
from trigger_service.outbox import store
from trigger_service.retrying import Backoff

log = logging.getLogger(__name__)
KEEP_SECONDS = 30 * 86400
PURGE_EVERY_SECONDS = 3600.0


class Channel(Protocol):
    """A plug-in that tells one external system something: a forge, a model registry."""

    @property
    def name(self) -> str: ...

    def deliver(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Deliver one item; idempotent (it may run twice for one row after a crash).
        Returns what the system answered worth keeping (e.g. the registry's version id).
        Raises TemporaryError (retry later) or PermanentError (drop)."""
        ...


class OutboxSender:
    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        *,
        worker_id: str,
        lease_seconds: float,
        backoff: Backoff,
        poll_seconds: float,
        clock: Callable[[], float],
        batch: int = 20,
    ) -> None:
        self.engine = engine
        self.channels = dict(channels)
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.backoff = backoff
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self._paused: dict[str, float] = {}  # channel -> not before, after a temporary failure

    def send_due(self) -> int:
        """One pass: deliver every row due now; returns how many were settled."""
        if self.clock() - self._last_purge >= PURGE_EVERY_SECONDS:
            self._last_purge = self.clock()
            store.purge(self.engine, self.clock() - KEEP_SECONDS)
        rows = store.claim(
            self.engine, self.worker_id, self.batch, self.lease_seconds, self.clock()
        )
        for row in rows:
            paused = self._paused.get(row.channel, 0.0)
            if paused > self.clock():
                store.release(self.engine, row.id, self.worker_id, self.clock(), paused)
                continue
            if not self._still_mine(row):
                log.warning(
                    "%s: lease on %s ran out before its turn: not sent", row.channel, row.key
                )
                continue
            delay = self._send(row)
            if delay is not None:
                self._paused[row.channel] = self.clock() + delay
            else:
                self._paused.pop(row.channel, None)
        return len(rows)

    def send_until_idle(self, max_passes: int = 100) -> int:
        """Passes until nothing is due now (tests and one-shot use)."""
        total = 0
        for _ in range(max_passes):
            sent = self.send_due()
            total += sent
            if not sent:
                break
        return total

    def _still_mine(self, row: Any) -> bool:
        """Whether the claim on `row` holds for its delivery: renewed (one write) only once
        less than half the lease is left, so a quick batch costs no extra write per row."""
        if self.clock() < row.lease_until - self.lease_seconds / 2:
            return True
        return store.renew(self.engine, row.id, self.worker_id, self.lease_seconds, self.clock())

    def _send(self, row: Any) -> float | None:
        """Deliver one row; the retry delay when the channel failed temporarily, else None."""
        extra = {"run_id": row.run_id, "decision_id": row.decision_id}
        channel = self.channels.get(row.channel)
        if channel is None:
            self._drop(row, f"channel {row.channel} is not configured", extra)
            return None
        try:
            result = channel.deliver(dict(row.payload))
        except TemporaryError as exc:
            delay = max(self.backoff.delay(row.attempts), exc.delay or 0.0)
            store.retry_later(self.engine, row.id, self.worker_id, self.clock(), delay, str(exc))
            OUTBOX_ITEMS.labels(row.channel, "retried").inc()
            log.warning(
                "%s: %s; retry %d in %.1f s", row.channel, exc, row.attempts, delay, extra=extra
            )
            return delay
        except PermanentError as exc:
            self._drop(row, str(exc), extra)
        except Exception as exc:
            # A bug in a channel: keep the item (retry with backoff) and say so loudly.
            delay = self.backoff.delay(row.attempts)
            store.retry_later(
                self.engine, row.id, self.worker_id, self.clock(), delay, f"bug: {exc!r}"
            )
            OUTBOX_ITEMS.labels(row.channel, "retried").inc()
            log.exception("%s: delivery failed unexpectedly", row.channel, extra=extra)
        else:
            store.delivered(self.engine, row.id, self.worker_id, self.clock(), result)
            OUTBOX_ITEMS.labels(row.channel, "delivered").inc()
            log.info("%s: delivered %s", row.channel, row.key, extra=extra)
        return None

    def _drop(self, row: Any, error: str, extra: dict[str, Any]) -> None:
        store.drop(self.engine, row.id, self.worker_id, self.clock(), error)
        OUTBOX_ITEMS.labels(row.channel, "dropped").inc()
        log.error("%s: dropped %s: %s", row.channel, row.key, error, extra=extra)

    # --- the sender's own thread inside the worker
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="outbox-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wakeup(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.send_due() > 0
            except Exception:
                log.exception("outbox pass failed")
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
