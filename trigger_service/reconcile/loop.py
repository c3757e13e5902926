"""The reconcile loop: every `reconcile_seconds` list each data trigger's bucket and prefix, and
store an event for each object version no notification brought.

It runs in the worker process (a thread started and stopped with the worker), never in the
request path. Events go into the inbox like a notification's, so the same filters, rules and
policy decide them (a batch debounces into one run); a listed object and its late notification
have the same Event id, so they are one event and one run.

A pass streams the listing in chunks of `chunk` entries: each chunk is compared with the seen
set in the database and committed before the next page is read, so memory is bounded by the
chunk and the client's page (1,000 entries), not the bucket. A failed listing is retried with
backoff (doubling from `retry_base_seconds`, at most the trigger's interval) and resumes after
the last key it committed; it never stops the worker.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from minio import Minio
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from trigger_service.events import Event
from trigger_service.metrics import (
    RECONCILE_BASELINE,
    RECONCILE_ERRORS,
    RECONCILE_LISTED,
    RECONCILE_MISSING,
    RECONCILE_SECONDS,
)
from trigger_service.reconcile import seen
from trigger_service.reconcile.listing import Listed, ListingError, is_versioned, list_entries
from trigger_service.rules import Rules
from trigger_service.rules.globs import match_any
from trigger_service.rules.model import DataTrigger
from trigger_service.sources.storage import LISTED_EVENT_NAME, listed_object_event

log = logging.getLogger(__name__)
Clock = Callable[[], float]
MAX_SLEEP_SECONDS = 5.0  # how soon a rules reload (a new or changed trigger) is noticed


class _Stopped(Exception):
    """The worker is stopping: the pass ends after its last committed chunk."""


@dataclass(frozen=True)
class PassResult:
    listed: int
    unseen: int
    new_events: int
    baseline: bool


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], Rules],
        client: Minio | None,
        *,
        on_new_events: Callable[[], None] = lambda: None,
        retry_base_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
        chunk: int = 500,
        clock: Clock = time.time,
    ) -> None:
        """`client`: None when no S3 endpoint is configured (nothing is listed)."""
        self.engine = engine
        self.rules = rules
        self.client = client
        self.on_new_events = on_new_events
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.chunk = chunk
        self.clock = clock
        self._due: dict[str, float] = {}  # scope -> when this process looks again
        # scope -> (last key a failed pass committed, the claim's last_listed_at): a retry
        # resumes there unless another process has completed a pass since.
        self._resume: dict[str, tuple[str, float | None]] = {}
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- which triggers are listed
    def triggers(self) -> list[DataTrigger]:
        listed = []
        for trigger in self.rules().triggers:
            if not isinstance(trigger, DataTrigger) or trigger.reconcile_seconds <= 0:
                continue
            if trigger.bucket is None:
                continue  # "any bucket": nothing to list (the rules check refuses asking for it)
            if not match_any(trigger.events, LISTED_EVENT_NAME):
                self._warn_once(
                    trigger.name, f"events {list(trigger.events)} refuse {LISTED_EVENT_NAME}"
                )
                continue
            if self.client is None:
                self._warn_once(
                    trigger.name,
                    "set TRIGGER_S3_ENDPOINT, TRIGGER_S3_ACCESS_KEY and TRIGGER_S3_SECRET_KEY",
                )
                continue
            listed.append(trigger)
        return listed

    def _warn_once(self, trigger: str, why: str) -> None:
        if trigger not in self._warned:
            self._warned.add(trigger)
            log.warning("data trigger %s is not reconciled: %s", trigger, why)

    # --- one pass
    def reconcile_due(self) -> int:
        """Run every pass that is due now; returns how many ran (tests and one-shot use)."""
        ran = 0
        for trigger in self.triggers():
            scope = self._scope(trigger)
            if self._due.get(scope, 0.0) > self.clock():
                continue
            try:
                ran += self.reconcile(trigger) is not None
            except Exception:
                # The store refused the claim (locked, down, a value it cannot hold): this
                # trigger waits, the others still run.
                RECONCILE_ERRORS.labels(trigger.name).inc()
                log.exception("reconcile of data trigger %s failed", trigger.name)
                self._due[scope] = self.clock() + min(MAX_SLEEP_SECONDS, trigger.reconcile_seconds)
        return ran

    def reconcile(self, trigger: DataTrigger) -> PassResult | None:
        """List `trigger`'s bucket once if its pass is due and no other process took it.

        Returns None when not due or when the listing failed (recorded, retried later).
        """
        assert trigger.bucket is not None
        now = self.clock()
        interval = trigger.reconcile_seconds
        claim = seen.claim_pass(
            self.engine, trigger.name, trigger.bucket, trigger.prefix, now, interval
        )
        if claim is None:
            self._due[self._scope(trigger)] = (
                seen.next_due_at(self.engine, self._scope(trigger)) or now + interval
            )
            return None
        started = time.monotonic()
        try:
            result = self._list(trigger, claim)
        except _Stopped:
            seen.release_pass(self.engine, claim.scope, now)  # due again at the next start
            return None
        except Exception as exc:
            self._failed(trigger, claim.scope, exc)
            return None
        finished = self.clock()
        self._resume.pop(claim.scope, None)
        self._due[claim.scope] = finished + interval
        seen.finish_pass(self.engine, claim.scope, finished, finished + interval, result.listed)
        RECONCILE_SECONDS.labels(trigger.name).observe(time.monotonic() - started)
        log.info(
            "reconciled data trigger %s: %d listed, %d unseen, %d new events%s",
            trigger.name,
            result.listed,
            result.unseen,
            result.new_events,
            " (baseline: no runs)" if result.baseline else "",
        )
        return result

    def _list(self, trigger: DataTrigger, claim: seen.Claim) -> PassResult:
        assert self.client is not None and trigger.bucket is not None
        baseline = not claim.baselined and trigger.reconcile_baseline == "skip"
        if baseline:
            self._warn_new_baseline(trigger, claim.scope)
        versioned = is_versioned(self.client, trigger.bucket)
        resume = None
        if claim.scope in self._resume:
            key, listed_at = self._resume[claim.scope]
            resume = key if listed_at == claim.last_listed_at else None
        entries = list_entries(self.client, trigger.bucket, trigger.prefix, versioned, resume)
        totals = [0, 0, 0]  # listed, unseen, new events
        chunk: list[tuple[Event, bool]] = []
        listed_in_chunk = 0
        done_key, current_key = resume, None  # keys up to done_key are fully committed
        for entry in entries:
            listed_in_chunk += 1
            if entry.key != current_key:
                done_key, current_key = current_key or done_key, entry.key
            event = self._event(trigger, entry)
            if event is not None:
                chunk.append((event, entry.live))
            if listed_in_chunk >= self.chunk:
                self._flush(trigger, claim.scope, chunk, listed_in_chunk, baseline, totals)
                chunk, listed_in_chunk = [], 0
                if done_key is not None:  # a retry resumes here (the current key relisted)
                    self._resume[claim.scope] = (done_key, claim.last_listed_at)
                if self._stop.is_set():
                    raise _Stopped
        self._flush(trigger, claim.scope, chunk, listed_in_chunk, baseline, totals)
        return PassResult(totals[0], totals[1], totals[2], baseline)

    def _warn_new_baseline(self, trigger: DataTrigger, scope: str) -> None:
        # A changed bucket or prefix starts a new baseline (documented); an object whose
        # notification was lost since the earlier listing is then skipped: say so, with when.
        earlier = seen.earlier_listing(self.engine, trigger.name, scope)
        if earlier is not None:
            bucket, prefix, listed_at = earlier
            log.warning(
                "data trigger %s now lists %s/%s (was %s/%s, last listed %s): a new baseline, so "
                "an object there whose notification was lost since then does not run "
                "(reconcile_baseline: run would run every object there)",
                trigger.name,
                trigger.bucket,
                trigger.prefix,
                bucket,
                prefix,
                datetime.fromtimestamp(listed_at, UTC).isoformat(timespec="seconds"),
            )

    def _event(self, trigger: DataTrigger, entry: Listed) -> Event | None:
        if not entry.key.endswith(trigger.suffix):
            return None
        assert trigger.bucket is not None
        return listed_object_event(
            trigger.bucket,
            entry.key,
            size=entry.size,
            etag=entry.etag,
            version_id=entry.version_id,
            received_at=datetime.fromtimestamp(self.clock(), UTC),
        )

    def _flush(
        self,
        trigger: DataTrigger,
        scope: str,
        chunk: list[tuple[Event, bool]],
        listed: int,
        baseline: bool,
        totals: list[int],
    ) -> None:
        recorded = seen.record_chunk(self.engine, scope, chunk, baseline, self.clock())
        totals[0] += listed
        totals[1] += recorded.unseen
        totals[2] += recorded.new_events
        RECONCILE_LISTED.labels(trigger.name).inc(listed)
        if baseline:
            RECONCILE_BASELINE.labels(trigger.name).inc(recorded.unseen)
        RECONCILE_MISSING.labels(trigger.name).inc(recorded.new_events)
        if recorded.new_events:
            log.warning(
                "data trigger %s: %d object(s) no notification brought, now events",
                trigger.name,
                recorded.new_events,
            )
            self.on_new_events()

    def _failed(self, trigger: DataTrigger, scope: str, exc: Exception) -> None:
        RECONCILE_ERRORS.labels(trigger.name).inc()
        try:
            failures = seen.failures_of(self.engine, scope)
        except SQLAlchemyError:
            failures = 0
        delay = min(
            self.retry_base_seconds * 2**failures, self.retry_max_seconds, trigger.reconcile_seconds
        )
        delay *= random.uniform(0.5, 1.0)  # jitter: replicas do not retry in step
        retry_at = self.clock() + delay
        self._due[scope] = retry_at
        log.warning(
            "listing for data trigger %s failed (retry in %.1f s): %s",
            trigger.name,
            delay,
            exc,
            exc_info=not isinstance(exc, ListingError | SQLAlchemyError),
        )
        try:
            seen.fail_pass(self.engine, scope, str(exc), retry_at)
        except Exception:
            log.exception("could not record the failed listing of %s", trigger.name)

    @staticmethod
    def _scope(trigger: DataTrigger) -> str:
        return seen.scope_of(trigger.name, trigger.bucket or "", trigger.prefix)

    # --- background thread in the worker process
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_due()
                due = [self._due.get(self._scope(t), 0.0) for t in self.triggers()]
                wake = min([self.clock() + MAX_SLEEP_SECONDS, *due])
                wait = max(0.05, wake - self.clock())
            except Exception:
                # A database hiccup must not stop reconciling: log, wait, try again.
                log.exception("reconcile loop failed")
                wait = MAX_SLEEP_SECONDS
            self._stop.wait(wait)
