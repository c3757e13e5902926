"""Closing a waiting decision by hand, before it becomes a run (the worker owns decisions).

A decision still collecting, queued or ready (not claimed for submission) is closed as a no-run;
one being submitted answers "busy": its run can be canceled a moment later.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select, update

from trigger_service.database import decisions, write
from trigger_service.tracking.cancel import Canceled

log = logging.getLogger(__name__)
CANCELABLE = ("collecting", "queued", "ready")


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
        if row.state not in CANCELABLE:
            hint = f"; cancel its run {row.run_id}" if row.run_id else ""
            detail = f"the decision is {row.state}, not waiting{hint}"
            return Canceled(decision_id, row.state, False, True, detail)
        # Conditional: admission or submission may take the decision at the same moment.
        changed = conn.execute(
            update(decisions)
            .where(decisions.c.id == decision_id, decisions.c.state.in_(CANCELABLE))
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
    log.info("decision canceled by an operator", extra={"decision_id": decision_id})
    return Canceled(decision_id, "canceled", True, False, "canceled by an operator")
