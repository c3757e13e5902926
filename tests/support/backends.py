"""A scripted backend for worker tests: the seam where a real KFP cannot run in a unit test.

It implements the Backend interface in memory, records every call, and lets a test decide run
states and inject temporary or permanent failures. The kfp backend itself is tested against the
REST double in tests/support/kfp_double.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trigger_service.errors import PermanentError, TemporaryError
from trigger_service.submit.base import RunRequest, RunState, RunStatus, VersionRef, VersionSpec


@dataclass
class ScriptedBackend:
    name: str = "scripted"
    versions: dict[tuple[str, str], VersionRef] = field(default_factory=dict)
    runs: dict[str, RunRequest] = field(default_factory=dict)  # external id -> request
    states: dict[str, RunState] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    submit_calls: int = 0
    fail_next_submits: list[Exception] = field(default_factory=list)

    def ensure_version(self, spec: VersionSpec) -> VersionRef:
        key = (spec.pipeline, spec.version)
        if key not in self.versions:
            self.versions[key] = VersionRef(
                spec.pipeline,
                spec.version,
                f"p-{spec.pipeline}",
                f"v-{spec.version}",
                spec.package_path,
            )
        return self.versions[key]

    def submit(self, request: RunRequest) -> str:
        self.submit_calls += 1
        if self.fail_next_submits:
            raise self.fail_next_submits.pop(0)
        external = f"ext-{len(self.runs) + 1}"
        self.runs[external] = request
        self.states[external] = RunState.PENDING
        return external

    def find_run(self, run_name: str) -> str | None:
        return next((k for k, r in self.runs.items() if r.run_name == run_name), None)

    def status(self, external_id: str) -> RunStatus:
        state = self.states[external_id]
        failed = "evaluate" if state is RunState.FAILED else None
        return RunStatus(
            state,
            external_id,
            failed_step=failed,
            error="gate failed" if failed else None,
            outputs=self.outputs.get(external_id, {}),
        )

    def cancel(self, external_id: str) -> None:
        self.states[external_id] = RunState.CANCELED

    def finish_all(self, state: RunState = RunState.SUCCEEDED) -> None:
        for key, current in self.states.items():
            if not current.finished:
                self.states[key] = state


TEMPORARY = TemporaryError("KFP answered 503")
PERMANENT = PermanentError("KFP answered 403: permission denied")
