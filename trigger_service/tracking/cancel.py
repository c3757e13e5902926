"""Cancelling by hand: a run on its backend, or a decision before it becomes a run.

A run is stopped through the backend (kfp: terminate; local: its process group; shadow: marked),
then asked for its state: a backend that stops at once (local, shadow) says `canceled` and the
run is recorded so; KFP says "canceling" first, so the request is recorded in the run's history
and the poll records `canceled` when KFP does. A canceled run is never polled again, so nothing
it might still have written is linked or rolled out.

A decision still collecting, queued or ready (not claimed for submission) is closed as a no-run;
one being submitted answers "busy" (its run can be canceled a moment later).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from trigger_service.database import decisions, runs, write
from trigger_service.submit.base import Backend, RunState
from trigger_service.tracking import runs as tracked

ACTIVE = ("pending", "running")
CANCELABLE_DECISIONS = ("collecting", "queued", "ready")


@dataclass(frozen=True)
class Canceled:
    """What a cancel did. `done`: the run or decision is canceled now; else `detail` says why not
    (`conflict`: it had already ended or is mid-submission: nothing was changed)."""

    id: str
    state: str
    done: bool
    conflict: bool
    detail: str


def cancel_run(engine: Engine, backend: Backend, run_id: str, now: float) -> Canceled | None:
    """Cancel run `run_id`; None if there is no such run. Backend errors (TemporaryError,
    PermanentError) propagate unchanged and nothing is recorded."""
    with engine.connect() as conn:
        row = tracked.get_run(conn, run_id)
    if row is None:
        return None
    if row.state not in ACTIVE:
        if row.state == "submitting":
            detail = "the run is being submitted; cancel it again in a moment"
            return Canceled(run_id, row.state, False, True, detail)
        return Canceled(run_id, row.state, False, True, f"the run has already ended: {row.state}")
    backend.cancel(row.external_id)
    status = backend.status(row.external_id)
    with write(engine) as conn:
        state = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar_one()
        if state not in ACTIVE:  # the poll recorded an end meanwhile
            return Canceled(run_id, state, state == "canceled", state != "canceled", state)
        if status.state is RunState.CANCELED:
            tracked.set_state(conn, run_id, "canceled", now, "canceled by an operator")
            return Canceled(run_id, "canceled", True, False, "canceled by an operator")
        tracked.add_state(conn, run_id, state, now, f"cancel requested ({backend.name})")
    if status.state.finished:  # it ended on its own first; the poll records how
        return Canceled(run_id, status.state.value, False, True, "the run ended before the cancel")
    return Canceled(run_id, state, False, False, "cancel requested; the backend is stopping it")


def cancel_decision(engine: Engine, decision_id: str, now: float) -> Canceled | None:
    """Close a decision that has not become a run yet; None if there is no such decision."""
    with write(engine) as conn:
        row = conn.execute(
            select(decisions.c.state, decisions.c.reason, decisions.c.run_id).where(
                decisions.c.id == decision_id
            )
        ).first()
        if row is None:
            return None
        if row.state not in CANCELABLE_DECISIONS:
            hint = f"; cancel its run {row.run_id}" if row.run_id else ""
            detail = f"the decision is {row.state}, not waiting{hint}"
            return Canceled(decision_id, row.state, False, True, detail)
        # Conditional: admission or submission may take the decision at the same moment.
        changed = conn.execute(
            update(decisions)
            .where(decisions.c.id == decision_id, decisions.c.state.in_(CANCELABLE_DECISIONS))
            .values(
                state="canceled",
                outcome="no_run",
                reason=f"canceled by an operator (was: {row.reason})",
                updated_at=now,
                lease_until=None,
            )
        ).rowcount
    if changed != 1:
        return Canceled(decision_id, "busy", False, True, "the decision moved on; look again")
    return Canceled(decision_id, "canceled", True, False, "canceled by an operator")
