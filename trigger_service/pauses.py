"""Paused triggers: stored (so a pause survives restarts) and read by every decision.

An event a paused trigger would have run ends in a no-run decision with the reason
"trigger paused: <name>"; resuming does not replay those events (`replay` does, by hand).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, ScalarSelect, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from trigger_service.database import trigger_pauses, write
from trigger_service.rules import Match, NoRun


def paused(conn: Connection) -> dict[str, dict[str, Any]]:
    """Trigger name -> {"paused_at": epoch seconds, "reason": str | None}."""
    return {
        row.trigger: {"paused_at": row.paused_at, "reason": row.reason}
        for row in conn.execute(select(trigger_pauses))
    }


def paused_triggers() -> ScalarSelect[Any]:
    """The paused triggers' names as a subquery (for a query that leaves them out)."""
    return select(trigger_pauses.c.trigger).scalar_subquery()


def pause(conn: Connection, trigger: str, now: float, reason: str | None = None) -> bool:
    """Pause `trigger`; False if it was already paused (the first pause's time is kept)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(trigger_pauses)
        .values(trigger=trigger, paused_at=now, reason=reason)
        .on_conflict_do_nothing()
        .execution_options(preserve_rowcount=True)
    ).rowcount
    return bool(inserted == 1)


def resume(conn: Connection, trigger: str) -> bool:
    """Resume `trigger`; False if it was not paused."""
    removed = conn.execute(delete(trigger_pauses).where(trigger_pauses.c.trigger == trigger))
    return bool(removed.rowcount == 1)


def set_paused(
    engine: Engine, trigger: str, paused: bool, now: float, reason: str | None = None
) -> bool:
    """Pause (at `now`, with `reason`) or resume `trigger` in a transaction of its own; whether
    anything changed."""
    with write(engine) as conn:
        return pause(conn, trigger, now, reason) if paused else resume(conn, trigger)


def paused_reason(trigger: str) -> str:
    return f"trigger paused: {trigger}"


def without_paused(
    verdict: list[Match] | NoRun, held: dict[str, Any] | set[str]
) -> list[Match] | NoRun:
    """The matches of triggers not paused; a NoRun naming the paused ones if none is left."""
    if isinstance(verdict, NoRun) or not held:
        return verdict
    running = [m for m in verdict if m.trigger not in held]
    return running or NoRun("; ".join(paused_reason(m.trigger) for m in verdict))
