"""Reads of the versions stage's tables (`pipeline_versions`, `current_versions`) for the API
and the console."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from trigger_service.database import current_versions, pipeline_versions


def pipeline_version(conn: Connection, pipeline: str, version: str | None) -> dict[str, Any] | None:
    """One registered version (every column), or None."""
    row = conn.execute(
        select(pipeline_versions).where(
            pipeline_versions.c.pipeline == pipeline, pipeline_versions.c.version == version
        )
    ).first()
    return dict(row._mapping) if row is not None else None


def pipelines(conn: Connection) -> list[dict[str, Any]]:
    """Per pipeline (by name): {"pipeline", "current": each branch's current version row,
    "versions": its registered versions, newest first}."""
    versions = [
        dict(r._mapping)
        for r in conn.execute(
            select(pipeline_versions).order_by(pipeline_versions.c.created_at.desc())
        )
    ]
    current = [dict(r._mapping) for r in conn.execute(select(current_versions))]
    names = sorted({v["pipeline"] for v in versions} | {c["pipeline"] for c in current})
    return [
        {
            "pipeline": name,
            "current": [c for c in current if c["pipeline"] == name],
            "versions": [v for v in versions if v["pipeline"] == name],
        }
        for name in names
    ]
