"""Polling unfinished runs: each change of state is recorded, reported, and a run that ended
having published a model is linked to it and rolled out (the worker loop calls `poll`).

A run the backend answers 404 for ends `lost`, freeing its pipeline. Each change is written in
one transaction with what it reports (a commit status, a registry registration) and its
decision's final state (`follow`, the worker's); the roll-out comes after the commit, and a
failed roll-out never undoes the run's result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select

from trigger_service.database import runs, write
from trigger_service.errors import NotFound, PermanentError, TemporaryError
from trigger_service.submit.base import Backend, RunState
from trigger_service.tracking import runs as tracked
from trigger_service.tracking.models import ModelLinker

if TYPE_CHECKING:
    from trigger_service.tracking.registrations import Registrar
    from trigger_service.tracking.reports import StatusReporter

log = logging.getLogger(__name__)


class RunPoller:
    """Asks the backend about every run `pending` or `running` (with an external id)."""

    def __init__(
        self,
        *,
        engine: Engine,
        backend: Backend,
        models: ModelLinker,
        clock: Callable[[], float],
        follow: tracked.FollowRun,
        reports: StatusReporter | None = None,
        registrar: Registrar | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.models = models
        self.clock = clock
        self.follow = follow  # the worker's decisions.follow_run
        # Outbox writers: commit statuses and registry registrations, each written in the
        # transaction of the change it reports.
        self.reports = reports
        self.registrar = registrar

    def poll(self) -> int:
        """Ask the backend about every unfinished run; record each change of state. Returns
        how many runs changed. Backend errors are logged and the run is asked again next time."""
        with self.engine.connect() as conn:
            active = conn.execute(
                select(runs.c.id, runs.c.external_id, runs.c.pipeline).where(
                    runs.c.state.in_(["pending", "running"]), runs.c.external_id.is_not(None)
                )
            ).all()
        changed = 0
        for run in active:
            try:
                status = self.backend.status(run.external_id)
            except NotFound as exc:
                changed += self._lost(run.id, run.external_id, exc)
                continue
            except (TemporaryError, PermanentError) as exc:
                log.warning("polling run failed: %s", exc, extra={"run_id": run.id})
                continue
            values: dict[str, Any] = {"url": status.url, "log_path": status.log_path}
            if status.state is RunState.FAILED:
                values.update(error=status.error, failed_step=status.failed_step)
            if status.state.finished:
                values["result"] = status.outputs or None
                values.update(self.models.link(run.id, status.outputs))
            with write(self.engine) as conn:
                detail = status.error if status.state is RunState.FAILED else None
                now = self.clock()
                state = status.state.value
                if tracked.set_state(
                    conn, run.id, state, now, detail, follow=self.follow, **values
                ):
                    changed += 1
                    extra = {"run_id": run.id, "pipeline": run.pipeline}
                    log.info("run %s", state, extra=extra)
                    self._report(conn, run.id, now)
                    if self.registrar is not None and values.get("model_version"):
                        self.registrar.published(conn, run.id, now)
            if status.state is RunState.SUCCEEDED and values.get("model_version"):
                self.models.rollout(run.id, values["model_name"], values["model_version"])
        return changed

    def _lost(self, run_id: str, external_id: str, error: Exception) -> int:
        """The backend no longer knows the run: it ends as `lost`, freeing its pipeline."""
        reason = f"the backend has no run {external_id} any more (deleted there?): {error}"
        log.warning("run lost: %s", reason, extra={"run_id": run_id})
        now = self.clock()
        with write(self.engine) as conn:
            changed = tracked.set_state(
                conn, run_id, "lost", now, reason, follow=self.follow, error=reason
            )
            if changed:
                self._report(conn, run_id, now)
            return int(changed)

    def _report(self, conn: Connection, run_id: str, now: float) -> None:
        if self.reports is not None:
            self.reports.run_changed(conn, run_id, now)
