"""One worker loop: each tick claims stored events and decides them, fires due decisions through
the policy, submits ready ones and has tracking poll unfinished runs (`tracking/poller.py`). Safe
to run in several processes against one PostgreSQL: every step claims its rows (SKIP LOCKED,
leases) before acting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from trigger_service.database import write
from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.events import Event
from trigger_service.inbox import ClaimedEvent, Inbox
from trigger_service.metrics import DEAD_LETTERS, DECISION_SECONDS, WORKER_ALIVE
from trigger_service.pauses import paused, without_paused
from trigger_service.rules import Match, NoRun, Rules, decide
from trigger_service.store_errors import classify
from trigger_service.versions.heads import BranchHeads
from trigger_service.versions.poll import BranchPoller
from trigger_service.worker import admission
from trigger_service.worker.decisions import join_or_open, record_no_runs
from trigger_service.worker.submitting import Submitter

if TYPE_CHECKING:
    from trigger_service.outbox.sender import OutboxSender
    from trigger_service.tracking.poller import RunPoller
    from trigger_service.tracking.reports import StatusReporter

log = logging.getLogger(__name__)
# Shortest interval between two ticks: a delivery waits at most this long for its decision.
MIN_TICK_SECONDS = 0.025
# An event whose decision cannot be recorded because the store failed is retried this often.
MAX_DECIDE_ATTEMPTS = 20


# A claimed event with its verdict, or the error to dead-letter it with.
Verdict = tuple[ClaimedEvent, list[Match] | NoRun | Exception]


def _bug(exc: Exception) -> Exception:
    return RuntimeError(repr(exc))


@dataclass
class TickResult:
    decided: int = 0
    fired: int = 0
    submitted: int = 0
    polled: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.decided or self.fired or self.submitted or self.polled)


class Worker:
    """The worker's thread: ticks while there is work, else waits `poll_seconds` or a wakeup.

    `batch`: events claimed per tick (TRIGGER_WORKER_BATCH), each for `lease_seconds`;
    `run_poll_seconds`: how often unfinished runs are asked about."""

    def __init__(
        self,
        *,
        engine: Engine,
        inbox: Inbox,
        submitter: Submitter,
        rules: Callable[[], Rules],
        worker_id: str,
        batch: int,
        lease_seconds: float,
        poll_seconds: float,
        run_poll_seconds: float,
        clock: Callable[[], float],
        runs: RunPoller,
        heads: BranchHeads | None = None,
        poller: BranchPoller | None = None,
        reports: StatusReporter | None = None,
        outbox: OutboxSender | None = None,
    ) -> None:
        self.engine = engine
        self.reports = reports  # commit statuses, written with each decision
        self.outbox = outbox  # delivers them (and registrations) on its own thread
        self.inbox = inbox
        self.submitter = submitter
        self.runs = runs  # tracking's: polls unfinished runs every run_poll_seconds
        self.rules = rules
        self.worker_id = worker_id
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.run_poll_seconds = run_poll_seconds
        self.clock = clock
        self.heads = heads  # git's answers for pushes; None: the payload's hints (tests only)
        self.poller = poller  # polls tracked branches in its own thread while this one runs
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_run_poll = 0.0
        # Loops that live and die with the worker's thread (the bucket reconcile): start(), stop().
        self.companions: list[Any] = []
        # Crash-only: set when the thread died; `on_death(reason)` then ends the process.
        self.failure: str | None = None
        self.on_death: Callable[[str], None] | None = None

    # --- one step of work
    def tick(self) -> TickResult:
        result = TickResult()
        claimed = self.inbox.claim(self.worker_id, self.batch, self.lease_seconds)
        if claimed:
            result.decided = self.decide(claimed)
        with write(self.engine) as conn:
            result.fired = admission.fire_due(conn, self.clock(), reports=self.reports)
        result.submitted = self.submitter.submit_ready()
        if self.clock() - self._last_run_poll >= self.run_poll_seconds:
            self._last_run_poll = self.clock()
            result.polled = self.runs.poll()
        return result

    def decide(self, claimed: list[ClaimedEvent]) -> int:
        """Decide a claimed batch in one transaction: each event ends in its decision(s).

        Run matches are grouped by coalescing scope first, so a storm of thousands of events
        for one prefix costs one decision update, not thousands. If the batch fails, each event
        is decided alone, so one bad event holds no other: it alone retries later (the store was
        unavailable) or dead-letters with its reason (it can never be recorded).
        """
        rules = self.rules()
        # Pushes ask git (outside the write transaction: it may take a network round trip).
        pending = self._verdicts(claimed, rules)
        now = self.clock()
        try:
            decided = self._decide_together(pending, now)
        except Exception as exc:
            if len(pending) == 1:
                self._set_aside(pending[0][0], exc)
                return len(claimed)
            stuck = max(item.attempts for item, _ in pending) >= MAX_DECIDE_ATTEMPTS
            if isinstance(classify(exc), TemporaryError) and not stuck:
                raise  # the store, not an event: the tick fails and the leases expire
            log.warning("a claimed batch failed (%r): deciding its events one by one", exc)
            decided = []
            for one in pending:
                try:
                    decided += self._decide_together([one], now)
                except Exception as alone:
                    self._set_aside(one[0], alone)
        for event in decided:
            DECISION_SECONDS.observe(max(0.0, now - event.received_at.timestamp()))
        return len(claimed)

    def _set_aside(self, item: ClaimedEvent, error: Exception) -> None:
        """One event that could not be decided: retry it later, or dead-letter it for good."""
        extra = {"event_id": item.event.id}
        if isinstance(classify(error), TemporaryError) and item.attempts < MAX_DECIDE_ATTEMPTS:
            log.warning("deciding the event failed, will retry: %r", error, extra=extra)
            delay = min(2.0**item.attempts, 60.0)  # a store hiccup: back off, up to a minute
            self.inbox.retry(item.event.id, f"could not decide yet: {error!r}", delay)
            return
        log.error("the event cannot be decided, dead-lettered: %r", error, extra=extra)
        self.inbox.dead_letter([item.event.id], f"could not record a decision: {error!r}"[:2000])
        DEAD_LETTERS.labels("decide").inc()

    def _decide_together(self, pending: list[Verdict], now: float) -> list[Event]:
        scopes: dict[str, list[tuple[Event, Match]]] = {}
        no_runs: list[tuple[Event, str]] = []
        with write(self.engine) as conn:
            decided = []
            held = paused(conn)
            for item, verdict in pending:
                event = item.event
                if isinstance(verdict, Exception):
                    # A bug or an event the rules cannot handle: park it where a person can
                    # see and replay it, instead of retrying it forever.
                    self.inbox.dead_letter([event.id], f"could not decide: {verdict}", conn)
                    DEAD_LETTERS.labels("decide").inc()
                    continue
                verdict = without_paused(verdict, held)
                if isinstance(verdict, NoRun):
                    no_runs.append((event, verdict.reason))
                else:
                    for match in verdict:
                        scopes.setdefault(match.batch_key, []).append((event, match))
                decided.append(event)
            closed = record_no_runs(conn, no_runs, now)
            if self.reports is not None:
                self.reports.no_runs(
                    conn, ((d, e, r) for d, (e, r) in zip(closed, no_runs, strict=True)), now
                )
            for batch in scopes.values():
                debounced = batch[-1][1].policy.debounce_seconds > 0
                groups = [batch] if debounced else [[pair] for pair in batch]
                for group in groups:
                    events, reasons = [e for e, _ in group], [m.reason for _, m in group]
                    join_or_open(conn, events, group[-1][1], now, reasons)
            self.inbox.finish([e.id for e in decided], conn)
        return decided

    def _verdicts(self, claimed: list[ClaimedEvent], rules: Rules) -> list[Verdict]:
        """Each event's verdict, or the error to dead-letter it with; an event whose git call
        failed for a passing reason goes back to the inbox for a later try."""
        facts_for = self.heads.for_batch() if self.heads is not None else None
        verdicts: list[Verdict] = []
        for item in claimed:
            event = item.event
            try:
                verdicts.append((item, decide(event, rules, facts_for)))
            except TemporaryError as exc:
                if item.attempts >= self.submitter.max_attempts:
                    verdicts.append((item, exc))
                    continue
                delay = self.submitter.backoff.delay(item.attempts)
                self.inbox.retry(event.id, str(exc), delay)
                log.warning("deciding needs git, will retry: %s", exc, extra={"event_id": event.id})
            except Exception as exc:
                log.exception("decision failed", extra={"event_id": event.id})
                verdicts.append((item, exc if isinstance(exc, PermanentError) else _bug(exc)))
        return verdicts

    def run_until_idle(self, max_ticks: int = 10_000) -> int:
        """Tick until nothing is left to do now (tests and the CLI's one-shot mode)."""
        ticks = 0
        while ticks < max_ticks:
            ticks += 1
            if not self.tick().busy:
                break
        return ticks

    # --- background thread inside `serve`
    def start(self) -> None:
        # Alive before the thread runs: a thread that dies at once must leave 0, not a 1 set
        # after its death.
        WORKER_ALIVE.set(1)
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()
        if self.poller is not None:
            self.poller.start()
        for companion in self.companions:
            companion.start()
        if self.outbox is not None:
            self.outbox.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.poller is not None:
            self.poller.stop(timeout)
        self._stop.set()
        self._wake.set()
        for companion in self.companions:
            companion.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.outbox is not None:
            self.outbox.stop(timeout)

    def wakeup(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        """The thread's body: if the loop ever ends other than by stop(), the worker is dead,
        readiness fails and `on_death` ends the process so its supervisor restarts it."""
        reason = "the worker loop returned"
        try:
            self._loop()
        except BaseException as exc:  # recorded and handed to on_death
            reason = f"the worker thread died: {exc!r}"
            log.critical(reason, exc_info=True)
        if self._stop.is_set():
            WORKER_ALIVE.set(0)
            return
        self.failure = reason
        WORKER_ALIVE.set(0)
        if self.on_death is not None:
            self.on_death(reason)

    @property
    def alive(self) -> bool:
        """True while the background loop started by start() is running."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        last_tick = 0.0
        while not self._stop.is_set():
            # Every stored delivery wakes the worker. Under a stream of deliveries, ticking at
            # most every MIN_TICK_SECONDS decides each burst in one transaction (one fsync, one
            # hold of SQLite's write lock) instead of four transactions per delivery, which
            # took the lock from the request path and halved ingest.
            since = time.monotonic() - last_tick
            if since < MIN_TICK_SECONDS:
                self._stop.wait(MIN_TICK_SECONDS - since)
            last_tick = time.monotonic()
            try:
                busy = self.tick().busy
            except Exception:
                # A database hiccup must not kill the worker: log, back off, try again.
                log.exception("worker tick failed")
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
