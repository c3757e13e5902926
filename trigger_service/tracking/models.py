"""Published model versions: linking a finished run to the version it published, and making the
model server load it.

The pipeline writes `<models_root>/<model>/<version>/metadata.json` with the decision id it ran
for, so a run is linked to its model by reading what was really published, whichever backend ran
it. The service reads the models root when it can (local backend, or the PVC mounted read-only).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from trigger_service.database import runs

if TYPE_CHECKING:
    from trigger_service.modelserver import Rollout

log = logging.getLogger(__name__)


def read_models(models_root: Path) -> list[dict[str, Any]]:
    """Every published version under the root, newest first, with its metadata."""
    found: list[dict[str, Any]] = []
    if not models_root.is_dir():
        return found
    for model_dir in sorted(p for p in models_root.iterdir() if p.is_dir()):
        for version_dir in model_dir.iterdir():
            # Staging folders start with a dot; only integer folders are versions.
            if not (version_dir.is_dir() and version_dir.name.isdigit()):
                continue
            try:
                metadata = json.loads((version_dir / "metadata.json").read_text())
            except (OSError, ValueError):
                metadata = {}
            found.append(
                {
                    "model_name": model_dir.name,
                    "version": int(version_dir.name),
                    "path": str(version_dir / "model.onnx"),
                    "metadata": metadata,
                }
            )
    found.sort(key=lambda m: (m["model_name"], -m["version"]))
    return found


def decision_of(model: dict[str, Any]) -> str | None:
    """The decision a published version was made for, from its metadata.json lineage."""
    lineage = model["metadata"].get("lineage") or {}
    decision = lineage.get("decision_id") if isinstance(lineage, dict) else None
    return str(decision) if decision else None


class ModelLinker:
    def __init__(self, engine: Engine, models_root: Path | None, rollout: Rollout) -> None:
        self.engine = engine
        self.models_root = models_root
        self._rollout = rollout

    def link(self, run_id: str, outputs: dict[str, Any]) -> dict[str, Any]:
        """The model name and version this run published, if it published one."""
        if outputs.get("published") and outputs.get("model_version") is not None:
            return {
                "model_name": outputs.get("model_name"),
                "model_version": int(outputs["model_version"]),
            }
        if self.models_root is None:
            return {}
        with self.engine.connect() as conn:
            decision_id = conn.execute(
                select(runs.c.decision_id).where(runs.c.id == run_id)
            ).scalar()
        for model in read_models(self.models_root):
            if decision_id and decision_of(model) == decision_id:
                return {"model_name": model["model_name"], "model_version": model["version"]}
        return {}

    @property
    def model_server(self) -> Rollout:
        """The roll-out the model-server settings name (a promotion runs it too)."""
        return self._rollout

    def rollout(self, run_id: str, model_name: str, version: int) -> None:
        try:
            result = self._rollout.rollout(model_name, version)
        except Exception as exc:  # a failed roll-out must not undo a published model
            log.error("model server roll-out failed: %s", exc, extra={"run_id": run_id})
            return
        log.info("model %s version %s: %s", model_name, version, result, extra={"run_id": run_id})
