"""The shadow backend: records what it would submit and submits nothing.

For rolling the service out beside an existing set-up: every decision, version and parameter set
is recorded as a run with backend "shadow", and nothing reaches a cluster.
"""

from __future__ import annotations

import logging

from trigger_service.submit.base import RunRequest, RunState, RunStatus, VersionRef, VersionSpec

log = logging.getLogger(__name__)


class ShadowBackend:
    name = "shadow"

    def __init__(self) -> None:
        self._submitted: set[str] = set()
        self._canceled: set[str] = set()

    def ensure_version(self, spec: VersionSpec) -> VersionRef:
        return VersionRef(spec.pipeline, spec.version, "shadow", spec.version, spec.package_path)

    def submit(self, request: RunRequest) -> str:
        log.info(
            "shadow: would run %s version %s with %s",
            request.version.pipeline,
            request.version.version,
            request.params,
        )
        self._submitted.add(request.run_name)
        return f"shadow-{request.run_name}"

    def find_run(self, run_name: str) -> str | None:
        return f"shadow-{run_name}" if run_name in self._submitted else None

    def status(self, external_id: str) -> RunStatus:
        if external_id in self._canceled:
            return RunStatus(RunState.CANCELED, external_id, outputs={"shadow": True})
        # Nothing runs, so nothing stays active: a shadow run ends as soon as it is recorded,
        # as `recorded` (not `succeeded`: nothing trained).
        return RunStatus(RunState.RECORDED, external_id, outputs={"shadow": True})

    def cancel(self, external_id: str) -> None:
        """Nothing runs to stop: the run is marked, and reports `canceled` from now on."""
        self._canceled.add(external_id)
