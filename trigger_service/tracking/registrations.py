"""Registrations of published model versions: written into the outbox in the transaction that
links a run to the version it published, delivered later by the worker's sender.

A registration carries the version's lineage as tags: the commit, pipeline and pipeline version,
the KFP run, our run and decision (with its reason), the triggering events, the data and the
metrics (from the version's metadata.json when the models root is readable). Every published
version moves the serving alias: publishing *is* the champion/challenger gate saying yes, and a
run that kept the champion publishes nothing, so registers nothing. A promotion queues the same
registration with the alias (idempotent on the registry side: looked up before created).
One exception: an operator promoted another version between the publish and this link (the
version is retired on the volume by then); the registry follows the volume, so the version is
registered without moving the alias.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from trigger_service.database import decision_events, decisions, runs
from trigger_service.errors import RejectedInput
from trigger_service.modelserver.promote import check_name, versions
from trigger_service.outbox.store import OutboxItem, enqueue

MAX_EVENTS_TAG = 20
log = logging.getLogger(__name__)


class Registrar:
    def __init__(
        self, channel: str, *, models_uri: str, alias: str, models_root: Path | None
    ) -> None:
        self.channel = channel
        self.models_uri = models_uri.rstrip("/")
        self.alias = alias
        self.models_root = models_root

    def source(self, model: str, version: int) -> str:
        return f"{self.models_uri}/{model}/{version}"

    def published(self, conn: Connection, run_id: str, now: float) -> bool:
        """Queue the registration of what `run_id` published (its run row names the version)."""
        run = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if run is None or run.model_version is None or not run.model_name:
            return False
        try:
            # The name comes from the run's outputs, i.e. from pushed code: it reaches the
            # models root (metadata.json) and the registry only once it is a model name.
            check_name(run.model_name, int(run.model_version))
        except RejectedInput as exc:
            log.error("not registered: %s", exc, extra={"run_id": run_id})
            return False
        decision = conn.execute(
            select(decisions.c.reason, decisions.c.trigger).where(decisions.c.id == run.decision_id)
        ).first()
        tags = {
            "pipeline": run.pipeline,
            "pipeline_version": run.version or "",
            "git_commit": run.version or "",
            "kfp_run_id": run.external_id or "",
            "trigger_run_id": run.id,
            "decision_id": run.decision_id,
            "decision_reason": decision.reason if decision else "",
            "trigger": (decision.trigger or "") if decision else "",
            "event_ids": ",".join(_event_ids(conn, run.decision_id)),
        }
        for key, value in self._metadata_tags(
            run.model_name, run.model_version, run.result
        ).items():
            if value and not tags.get(key):
                tags[key] = value
        serving = self._serving(run.model_name, run.model_version)
        return self._queue(
            conn,
            run.model_name,
            run.model_version,
            tags,
            alias=self.alias if serving else None,
            key=f"register:{self.channel}:{run.model_name}:{run.model_version}",
            description=f"{run.model_name} v{run.model_version}: run {run.id}, commit "
            f"{(run.version or '')[:12]}",
            now=now,
            run_id=run.id,
            decision_id=run.decision_id,
        )

    def promoted(
        self, conn: Connection, model: str, version: int, now: float, request: str
    ) -> bool:
        """Queue moving the alias to `version` (registering it first if it never was)."""
        tags = {"promoted": request}
        tags.update(self._metadata_tags(model, version, None))
        return self._queue(
            conn,
            model,
            version,
            tags,
            alias=self.alias,
            key=f"promote:{self.channel}:{model}:{version}:{request}",
            description=f"{model} v{version}",
            now=now,
        )

    def _queue(
        self,
        conn: Connection,
        model: str,
        version: int,
        tags: dict[str, str],
        *,
        alias: str | None,
        key: str,
        description: str,
        now: float,
        run_id: str | None = None,
        decision_id: str | None = None,
    ) -> bool:
        payload = {
            "model": model,
            "version": int(version),
            "source": self.source(model, version),
            "description": description,
            "tags": {k: v for k, v in tags.items() if v not in (None, "")},
            "alias": alias,
        }
        item = OutboxItem(
            channel=self.channel,
            key=key,
            # One model's registrations and alias moves go out in the order they were written.
            ordering=f"registry:{self.channel}:{model}",
            payload=payload,
            run_id=run_id,
            decision_id=decision_id,
        )
        return enqueue(conn, item, now)

    def _serving(self, model: str, version: int) -> bool:
        """Whether `version` is what the volume serves (the highest version folder); True when
        the models root cannot be read here (the publish is the best word there is)."""
        if self.models_root is None:
            return True
        try:
            present = versions(self.models_root / model)
        except OSError:
            return True
        return not present or max(present) == version

    def _metadata_tags(
        self, model: str, version: int, result: dict[str, Any] | None
    ) -> dict[str, str]:
        metadata = self._metadata(model, version)
        metrics = dict((result or {}).get("metrics") or {})
        metrics.update(metadata.get("metrics") or {})
        tags = {f"metric.{k}": str(v) for k, v in sorted(metrics.items()) if _number(v)}
        data = metadata.get("data") or {}
        lineage = metadata.get("lineage") or {}
        if isinstance(data, dict):
            tags["data_uri"] = str(data.get("uri") or "")
            tags["data_sha256"] = str(data.get("sha256") or "")
        if isinstance(lineage, dict):
            tags.setdefault("git_commit", str(lineage.get("git_commit") or ""))
            tags["trigger_reason"] = str(lineage.get("trigger_reason") or "")
        if metadata.get("created"):
            tags["published_at"] = str(metadata["created"])
        return tags

    def _metadata(self, model: str, version: int) -> dict[str, Any]:
        if self.models_root is None:
            return {}
        try:
            data = json.loads(
                (self.models_root / model / str(version) / "metadata.json").read_text()
            )
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def _event_ids(conn: Connection, decision_id: str) -> list[str]:
    return list(
        conn.execute(
            select(decision_events.c.event_id)
            .where(decision_events.c.decision_id == decision_id)
            .order_by(decision_events.c.at, decision_events.c.event_id)
            .limit(MAX_EVENTS_TAG)
        ).scalars()
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
