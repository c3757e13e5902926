"""A manual promotion: the serving version on the volume and the registry alias move together.

    promote(...) -> dict   {"model", "version", "restored", "retired", "rollout", "registry"}

First the volume (the truth the model server reads: modelserver/promote.py), then, in one
transaction, the registry alias as an outbox item (delivered by the worker's sender, retried
through a registry outage), then the roll-out the model-server settings name. Repeating a
promotion is harmless: the volume is already right and the registry move is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from trigger_service.database import write
from trigger_service.modelserver import Rollout
from trigger_service.modelserver.promote import promote_on_volume
from trigger_service.tracking.registrations import Registrar


def promote(
    *,
    engine: Engine,
    models_root: Path,
    rollout: Rollout,
    registrar: Registrar | None,
    model: str,
    version: int,
    clock: Callable[[], float],
) -> dict[str, Any]:
    moved = promote_on_volume(models_root, model, version)
    registry: dict[str, Any] | None = None
    if registrar is not None:
        request = f"p-{uuid.uuid4().hex[:12]}"
        with write(engine) as conn:
            registrar.promoted(conn, model, version, clock(), request)
        registry = {"channel": registrar.channel, "alias": registrar.alias, "request": request}
    return {
        "model": moved.model,
        "version": moved.version,
        "restored": moved.restored,
        "retired": moved.retired,
        "rollout": rollout.rollout(model, version),
        "registry": registry,
    }
