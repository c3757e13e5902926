"""Ready decisions become runs (polling them until they end is tracking/poller.py's).

Idempotency: the run record (state `submitting`, its run name derived from the decision's
idempotency key) is committed before the backend is called. A crash after that leaves the
decision `submitting` with an expired lease; whoever takes it next asks the backend for a run of
that name before submitting anything, so one decision never makes two runs.

No decision can wedge a pipeline: any error while submitting, expected or not (a bug, a value
git or the OS refuses), retries with backoff and then dead-letters like a temporary one; a
decision whose lease ran out `max_attempts` times (the process died each time) dead-letters
when it is claimed again. So a decision is never `submitting` for longer than its lease.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, update

from trigger_service import leases
from trigger_service.database import decisions, write
from trigger_service.errors import NotFound, PermanentError, RejectedInput, TemporaryError
from trigger_service.metrics import DEAD_LETTERS, SUBMIT_FAILURES
from trigger_service.retrying import Backoff
from trigger_service.rules import Rules, VersionRequest
from trigger_service.submit.base import Backend, RunRequest
from trigger_service.tracking import runs as tracked
from trigger_service.versions.registry import NothingToBuild, VersionRegistry
from trigger_service.versions.reupload import reupload
from trigger_service.worker.decisions import (
    causes,
    covered_events,
    dead_letter_events,
    describe_causes,
    follow_run,
)

if TYPE_CHECKING:
    from trigger_service.tracking.reports import StatusReporter

log = logging.getLogger(__name__)
DECISION_LEASES = leases.Leased(
    decisions, decisions.c.state, waiting="ready", held="submitting", stamped=True
)


def trigger_reason(row: Any, found: list[tuple[str, str, int]]) -> str:
    """The run's `trigger_reason`: the rules' own rendering when one trigger is behind the
    decision, else every cause (a drift alert merged into a data run is named, not lost)."""
    rendered = (row.params or {}).get("trigger_reason")
    if len(found) <= 1 and rendered:
        return str(rendered)
    return describe_causes(found) or str(row.reason)


class Submitter:
    """Claims ready decisions one at a time and submits each (module docstring).

    `lease_seconds`: how long a claim lasts unless extended (TRIGGER_CLAIM_LEASE_SECONDS);
    `backoff`: the delay before a failed submission is tried again; `max_attempts`: tries
    before a decision dead-letters (TRIGGER_MAX_ATTEMPTS)."""

    def __init__(
        self,
        *,
        engine: Engine,
        backend: Backend,
        versions: VersionRegistry,
        rules: Callable[[], Rules],
        worker_id: str,
        lease_seconds: float,
        backoff: Backoff,
        max_attempts: int,
        clock: Callable[[], float],
        reports: StatusReporter | None = None,
    ) -> None:
        self.engine = engine
        # The outbox writer for commit statuses (tracking/), written in the transaction of the
        # change it reports.
        self.reports = reports
        self.backend = backend
        self.versions = versions
        self.rules = rules
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.clock = clock

    # --- submit
    def submit_ready(self, limit: int = 5) -> int:
        """Submit up to `limit` ready decisions, claiming one at a time: a crash strands only
        the decision in flight, never others claimed beside it and not yet started."""
        done = 0
        while done < limit:
            claimed = self._claim(1)
            if not claimed:
                break
            with leases.kept_lease(
                self.engine,
                decisions,
                claimed[0].id,
                self.worker_id,
                self.lease_seconds,
                self.clock,
            ):
                self._submit_one(claimed[0])
            done += 1
        return done

    def _claim(self, limit: int) -> list[Any]:
        return leases.claim(
            self.engine,
            DECISION_LEASES,
            self.worker_id,
            limit=limit,
            lease_seconds=self.lease_seconds,
            now=self.clock(),
            order_by=(decisions.c.due_at,),
        )

    def _submit_one(self, row: Any) -> None:
        extra = {"decision_id": row.id, "pipeline": row.pipeline}
        if row.attempts > self.max_attempts:
            # Claimed again after its lease ran out each time: the submission kills its process.
            self._dead(row, f"gave up after {row.attempts - 1} attempts that never finished")
            log.error("submission never finished; dead-lettered", extra=extra)
            return
        try:
            run_id = self._submit(row)
        except NothingToBuild as exc:
            self._nothing_to_build(row, str(exc))
            log.info("nothing to build: %s", exc, extra=extra)
        except TemporaryError as exc:
            SUBMIT_FAILURES.labels(self.backend.name, "temporary").inc()
            self._retry_or_dead(row, str(exc), exc.delay)
            log.warning("submission failed, will retry: %s", exc, extra=extra)
        except (PermanentError, RejectedInput) as exc:  # RejectedInput: a stored value refused
            SUBMIT_FAILURES.labels(self.backend.name, "permanent").inc()
            self._dead(row, str(exc))
            log.error("submission failed permanently: %s", exc, extra=extra)
        except Exception as exc:
            # Unexpected: retried like a temporary error (it may be a passing fault), then
            # dead-lettered with its reason, instead of leaving the decision `submitting`.
            SUBMIT_FAILURES.labels(self.backend.name, "unexpected").inc()
            self._retry_or_dead(row, f"unexpected error: {exc!r}")
            log.exception("submission failed unexpectedly, will retry", extra=extra)
        else:
            log.info("run submitted", extra={**extra, "run_id": run_id})

    def _submit(self, row: Any) -> str:
        rules = self.rules()
        pipeline = rules.pipeline(row.pipeline)
        if pipeline is None:
            raise PermanentError(f"pipeline {row.pipeline} is no longer in the rules file")
        request = VersionRequest(**row.version_request)
        with self.engine.connect() as conn:
            event_ids = covered_events(conn, row.id)
            found = causes(conn, row.id)
            earlier = tracked.run_by_decision(conn, row.id)
        last_event = event_ids[-1] if event_ids else ""
        if earlier is not None and earlier.version:
            # An earlier attempt chose the version (and may have run it): keep it.
            resolved = self.versions.resume(pipeline, request, earlier.version)
        else:
            # Git decides here, at fire time: the head now (NothingToBuild if already built).
            resolved = self.versions.resolve(pipeline, request, last_event)
        version = resolved.ref
        run_name = f"{pipeline.name}-{row.idempotency_key}"
        # Lineage parameters the project's pipeline writes into the model's metadata.json.
        params = {
            **row.params,
            "decision_id": row.id,
            "event_ids": ",".join(event_ids[:20]),
            "git_commit": version.version,
            "trigger_reason": trigger_reason(row, found),
        }
        now = self.clock()
        with write(self.engine) as conn:
            existing = tracked.run_by_decision(conn, row.id)
            if existing is None:
                run_id = tracked.create_run(
                    conn,
                    decision_id=row.id,
                    backend=self.backend.name,
                    pipeline=pipeline.name,
                    version=version.version,
                    params=params,
                    run_name=run_name,
                    now=now,
                )
            else:
                run_id = existing.id
            conn.execute(
                update(decisions)
                .where(decisions.c.id == row.id)
                .values(version=version.version, run_id=run_id)
            )
        # Reconcile first: a crash after an earlier submit must not make a second run.
        external = self.backend.find_run(run_name)
        if external is None:
            description = f"decision {row.id}: {row.reason}; events: " + ", ".join(event_ids[:50])
            if len(event_ids) > 50:
                description += f" (+{len(event_ids) - 50} more)"
            run_request = RunRequest(
                run_name=run_name,
                version=version,
                params=params,
                experiment=pipeline.experiment,
                description=description,
            )
            try:
                external = self.backend.submit(run_request)
            except NotFound as exc:
                # The version was deleted in the backend: upload it again from the stored
                # package (same commit, same file) and submit once more.
                log.warning("%s; uploading the version again", exc, extra={"decision_id": row.id})
                again = reupload(self.engine, self.backend, version)
                external = self.backend.submit(dataclasses.replace(run_request, version=again))
        now = self.clock()
        reason = f"{row.reason}; {resolved.note}" if resolved.note else row.reason
        with write(self.engine) as conn:
            submitted = {"external_id": external}
            if tracked.set_state(
                conn, run_id, "pending", now, "submitted", follow=follow_run, **submitted
            ):
                self._report_run(conn, run_id, now)
            conn.execute(
                update(decisions)
                .where(decisions.c.id == row.id)
                .values(
                    state="submitted",
                    lease_until=None,
                    last_error=None,
                    updated_at=now,
                    reason=reason,
                )
            )
            if resolved.current_for is not None:
                # Only a submitted run moves the branch's current version.
                self.versions.set_current(
                    conn,
                    pipeline.name,
                    resolved.current_for,
                    version.version,
                    last_event,
                    resolved.note or f"run {run_id} of decision {row.id}",
                )
        return run_id

    def _nothing_to_build(self, row: Any, why: str) -> None:
        """Git said no at fire time: the decision ends as a no-run with git's reason."""
        now = self.clock()
        with write(self.engine) as conn:
            conn.execute(
                update(decisions)
                .where(decisions.c.id == row.id)
                .values(
                    outcome="no_run",
                    state="done",
                    reason=f"no run: {why} (when it fired; decided as: {row.reason})",
                    lease_until=None,
                    last_error=None,
                    updated_at=now,
                )
            )

    def _retry_or_dead(self, row: Any, error: str, at_least: float | None = None) -> None:
        if row.attempts >= self.max_attempts:
            self._dead(row, f"gave up after {row.attempts} attempts: {error}")
            return
        # The backend's own Retry-After, when it gave one, is a floor for the backoff.
        delay = max(self.backoff.delay(row.attempts), at_least or 0.0)
        with write(self.engine) as conn:
            conn.execute(
                update(decisions)
                .where(decisions.c.id == row.id)
                .values(
                    state="ready",
                    not_before=self.clock() + delay,
                    lease_until=None,
                    last_error=error,
                    updated_at=self.clock(),
                )
            )

    def _dead(self, row: Any, error: str) -> None:
        now = self.clock()
        with write(self.engine) as conn:
            conn.execute(
                update(decisions)
                .where(decisions.c.id == row.id)
                .values(state="dead", last_error=error, lease_until=None, updated_at=now)
            )
            if row.run_id or tracked.run_by_decision(conn, row.id) is not None:
                run = tracked.run_by_decision(conn, row.id)
                if tracked.set_state(
                    conn, run.id, "failed", now, error, follow=follow_run, error=error
                ):
                    self._report_run(conn, run.id, now)
            elif self.reports is not None:
                self.reports.decision_changed(conn, row.id, now)
            ids = dead_letter_events(conn, row.id, error)
        DEAD_LETTERS.labels("submit").inc(len(ids) or 1)

    def _report_run(self, conn: Any, run_id: str, now: float) -> None:
        if self.reports is not None:
            self.reports.run_changed(conn, run_id, now)
