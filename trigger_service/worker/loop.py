"""One worker loop: each tick claims stored events and decides them, fires due decisions through
the policy, submits ready ones and polls unfinished runs. Safe to run in several processes
against one PostgreSQL: every step claims its rows (SKIP LOCKED, leases) before acting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from trigger_service.database import write
from trigger_service.events import Event
from trigger_service.inbox import ClaimedEvent, Inbox
from trigger_service.metrics import DEAD_LETTERS, DECISION_SECONDS
from trigger_service.rules import Match, NoRun, Rules, decide
from trigger_service.worker import admission
from trigger_service.worker.decisions import join_or_open, record_no_runs
from trigger_service.worker.submitting import Submitter

if TYPE_CHECKING:
    from trigger_service.outbox.sender import OutboxSender
    from trigger_service.tracking.reports import StatusReporter

log = logging.getLogger(__name__)


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
    def __init__(
        self,
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
        reports: StatusReporter | None = None,
        outbox: OutboxSender | None = None,
    ) -> None:
        self.engine = engine
        self.reports = reports  # commit statuses, written with each decision
        self.outbox = outbox  # delivers them (and registrations) on its own thread
        self.inbox = inbox
        self.submitter = submitter
        self.rules = rules
        self.worker_id = worker_id
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.run_poll_seconds = run_poll_seconds
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_run_poll = 0.0

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
            result.polled = self.submitter.poll_runs()
        return result

    def decide(self, claimed: list[ClaimedEvent]) -> int:
        """Decide a claimed batch in one transaction: each event ends in its decision(s).

        Run matches are grouped by coalescing scope first, so a storm of thousands of events
        for one prefix costs one decision update, not thousands.
        """
        rules = self.rules()
        now = self.clock()
        scopes: dict[str, list[tuple[Event, Match]]] = {}
        no_runs: list[tuple[Event, str]] = []
        with write(self.engine) as conn:
            decided = []
            for item in claimed:
                event = item.event
                try:
                    verdict = decide(event, rules)
                except Exception as exc:
                    # A bug or an event the rules cannot handle: park it where a person can
                    # see and replay it, instead of retrying it forever.
                    self.inbox.dead_letter([event.id], f"could not decide: {exc!r}", conn)
                    DEAD_LETTERS.labels("decide").inc()
                    log.exception("decision failed", extra={"event_id": event.id})
                    continue
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
                    join_or_open(conn, [e for e, _ in group], group[-1][1], now)
            self.inbox.finish([e.id for e in decided], conn)
        for event in decided:
            DECISION_SECONDS.observe(max(0.0, now - event.received_at.timestamp()))
        return len(claimed)

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
        self._thread = threading.Thread(target=self._loop, name="worker", daemon=True)
        self._thread.start()
        if self.outbox is not None:
            self.outbox.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.outbox is not None:
            self.outbox.stop(timeout)

    def wakeup(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.tick().busy
            except Exception:
                # A database hiccup must not kill the worker: log, back off, try again.
                log.exception("worker tick failed")
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
