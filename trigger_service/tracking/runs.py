"""Run records and the history of every state each run passed through.

Tracking writes `runs` and `run_states` only. A run's decision (the worker's table) follows its
run's final state through the worker's `decisions.follow_run`, which every caller of
`set_state` passes in as `follow`: so the decision changes in the same transaction as its run,
and tracking never imports the worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from trigger_service.database import run_states, runs
from trigger_service.metrics import RUNS

# A run ends in one of these; its decision then takes the same state. `recorded`: the shadow
# backend wrote down what it would have run, and nothing ran. `lost`: the backend answered 404
# for the run (deleted there); it ends like any other.
FINAL_STATES = ("succeeded", "failed", "canceled", "lost", "recorded")
# A run in one of these holds its pipeline (concurrency) and is shown as in progress.
ACTIVE_STATES = ("submitting", "pending", "running")

# (conn, decision_id, final run state, now): called in the transaction that ends the run.
FollowRun = Callable[[Connection, str, str, float], None]


def new_run_id() -> str:
    return f"r-{uuid.uuid4().hex[:16]}"


def create_run(
    conn: Connection,
    *,
    decision_id: str,
    backend: str,
    pipeline: str,
    version: str,
    params: dict[str, Any],
    run_name: str,
    now: float,
) -> str:
    run_id = new_run_id()
    conn.execute(
        insert(runs).values(
            id=run_id,
            decision_id=decision_id,
            backend=backend,
            pipeline=pipeline,
            version=version,
            params=params,
            run_name=run_name,
            state="submitting",
            created_at=now,
            updated_at=now,
        )
    )
    add_state(conn, run_id, "submitting", now, None)
    return run_id


def add_state(conn: Connection, run_id: str, state: str, now: float, detail: str | None) -> None:
    conn.execute(insert(run_states).values(run_id=run_id, state=state, at=now, detail=detail))


def set_state(
    conn: Connection,
    run_id: str,
    state: str,
    now: float,
    detail: str | None = None,
    *,
    follow: FollowRun,
    **values: Any,
) -> bool:
    """Move a run to `state` (recording the change once); returns whether it changed. On a
    change to a final state, `follow` moves the run's decision with it (same transaction)."""
    current = conn.execute(
        select(runs.c.state, runs.c.pipeline, runs.c.decision_id).where(runs.c.id == run_id)
    ).first()
    if current is None:
        return False
    changed = current.state != state
    if changed:
        add_state(conn, run_id, state, now, detail)
        if state in FINAL_STATES:
            values.setdefault("finished_at", now)
            RUNS.labels(current.pipeline, state).inc()
            follow(conn, current.decision_id, state, now)
    conn.execute(
        update(runs).where(runs.c.id == run_id).values(state=state, updated_at=now, **values)
    )
    return changed


def run_by_decision(conn: Connection, decision_id: str) -> Any:
    return conn.execute(select(runs).where(runs.c.decision_id == decision_id)).first()


def run_dict(conn: Connection, row: Any, with_history: bool = True) -> dict[str, Any]:
    data = {c: getattr(row, c) for c in runs.c.keys()}  # noqa: SIM118 - a ColumnCollection
    if with_history:
        data["states"] = [
            {"state": s.state, "at": s.at, "detail": s.detail}
            for s in conn.execute(
                select(run_states).where(run_states.c.run_id == row.id).order_by(run_states.c.id)
            )
        ]
    return data


def list_runs(
    conn: Connection,
    state: str | None = None,
    pipeline: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    stmt = select(runs).order_by(runs.c.created_at.desc(), runs.c.id)
    if state is not None:
        stmt = stmt.where(runs.c.state == state)
    if pipeline is not None:
        stmt = stmt.where(runs.c.pipeline == pipeline)
    return [run_dict(conn, r, False) for r in conn.execute(stmt.limit(limit).offset(offset))]


def get_run(conn: Connection, run_id: str) -> Any:
    return conn.execute(select(runs).where(runs.c.id == run_id)).first()


def run_for_model(conn: Connection, model_name: str, version: int) -> Any:
    """The run linked to a published model version (the whole row), or None."""
    return conn.execute(
        select(runs).where(runs.c.model_name == model_name, runs.c.model_version == version)
    ).first()


def active_count(conn: Connection, pipeline: str) -> int:
    """How many runs of `pipeline` are in an ACTIVE_STATES state."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(runs)
            .where(runs.c.pipeline == pipeline, runs.c.state.in_(ACTIVE_STATES))
        ).scalar_one()
    )


def last_started(conn: Connection, pipeline: str) -> float | None:
    """When the newest run of `pipeline` was created (epoch seconds), or None."""
    found = conn.execute(
        select(func.max(runs.c.created_at)).where(runs.c.pipeline == pipeline)
    ).scalar()
    return None if found is None else float(found)


def started_since(conn: Connection, pipeline: str, since: float) -> int:
    """How many runs of `pipeline` were created after `since` (epoch seconds)."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(runs)
            .where(runs.c.pipeline == pipeline, runs.c.created_at > since)
        ).scalar_one()
    )
