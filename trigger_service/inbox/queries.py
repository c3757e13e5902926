"""Reads of the inbox's `events` table by other stages and the edge, on the caller's
connection (the `Inbox` object's own reads open theirs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from trigger_service.database import events


def event_summary(conn: Connection, event_id: str) -> dict[str, Any]:
    """{"id", "source", "kind", "subject", "received_at"}; only {"id"} when it is not stored."""
    row = conn.execute(select(events).where(events.c.id == event_id)).first()
    if row is None:
        return {"id": event_id}
    return {
        "id": row.id,
        "source": row.source,
        "kind": row.kind,
        "subject": row.subject,
        "received_at": row.received_at,
    }


def is_stored(conn: Connection, event_id: str) -> bool:
    """Whether an event of this id is stored."""
    return conn.execute(select(events.c.id).where(events.c.id == event_id)).first() is not None
