"""Cancelling a run by hand, on its backend (a waiting decision: worker/canceling.py).

A run is stopped through the backend (kfp: terminate; local: its process group; shadow: marked),
then asked for its state: a backend that stops at once (local, shadow) says `canceled` and the
run is recorded so; KFP says "canceling" first, so the request is recorded in the run's history
and the poll records `canceled` when KFP does. A canceled run is never polled again, so nothing
it might still have written is linked or rolled out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, select

from trigger_service.database import runs, write
from trigger_service.errors import PermanentError
from trigger_service.submit.base import Backend, RunState
from trigger_service.tracking import runs as tracked

log = logging.getLogger(__name__)
ACTIVE = ("pending", "running")


@dataclass(frozen=True)
class Canceled:
    """What a cancel did. `done`: the run or decision is canceled now; else `detail` says why not
    (`conflict`: it had already ended or is mid-submission: nothing was changed)."""

    id: str
    state: str
    done: bool
    conflict: bool
    detail: str


def cancel_run(
    engine: Engine, backend: Backend, run_id: str, now: float, follow: tracked.FollowRun
) -> Canceled | None:
    """Cancel run `run_id`; None if there is no such run. `follow` is the worker's
    `decisions.follow_run`: a run canceled here cancels its decision too. Backend errors
    (TemporaryError, PermanentError) propagate unchanged and nothing is recorded."""
    with engine.connect() as conn:
        row = tracked.get_run(conn, run_id)
    if row is None:
        return None
    if row.state not in ACTIVE:
        if row.state == "submitting":
            detail = "the run is being submitted; cancel it again in a moment"
            return Canceled(run_id, row.state, False, True, detail)
        return Canceled(run_id, row.state, False, True, f"the run has already ended: {row.state}")
    try:
        backend.cancel(row.external_id)
    except PermanentError:
        # KFP refuses to terminate a run that has just finished: say so if that is the case.
        if not backend.status(row.external_id).state.finished:
            raise
    status = backend.status(row.external_id)
    with write(engine) as conn:
        state = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar_one()
        if state not in ACTIVE:  # the poll recorded an end meanwhile
            return Canceled(run_id, state, state == "canceled", state != "canceled", state)
        if status.state is RunState.CANCELED:
            detail = "canceled by an operator"
            tracked.set_state(conn, run_id, "canceled", now, detail, follow=follow)
            log.info("run canceled by an operator", extra={"run_id": run_id})
            return Canceled(run_id, "canceled", True, False, "canceled by an operator")
        tracked.add_state(conn, run_id, state, now, f"cancel requested ({backend.name})")
    log.info("run cancel requested from %s", backend.name, extra={"run_id": run_id})
    if status.state.finished:  # it ended on its own first; the poll records how
        return Canceled(run_id, status.state.value, False, True, "the run ended before the cancel")
    return Canceled(run_id, state, False, False, "cancel requested; the backend is stopping it")
