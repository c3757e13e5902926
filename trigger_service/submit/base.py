"""The one small interface every submission backend implements.

    ensure_version(spec) -> VersionRef   register a compiled pipeline as a version (idempotent)
    submit(request)      -> str          start a run; idempotent on request.run_name
    find_run(run_name)   -> str | None   reconcile after a crash: the run made under that name
    status(external_id)  -> RunStatus    where the run is now
    cancel(external_id)                  stop it

Backends raise TemporaryError (retry later) or PermanentError (dead-letter) and nothing else
on purpose; the original exception stays chained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    RECORDED = "recorded"  # shadow: written down, nothing ran

    @property
    def finished(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED, RunState.RECORDED)


@dataclass(frozen=True)
class VersionSpec:
    pipeline: str  # the backend's pipeline name (rules: kfp_pipeline)
    version: str  # version name: the commit sha, or a pinned/named version
    package_path: Path  # compiled KFP IR YAML
    description: str = ""


@dataclass(frozen=True)
class VersionRef:
    pipeline: str
    version: str
    pipeline_id: str
    version_id: str
    package_path: Path


@dataclass(frozen=True)
class RunRequest:
    run_name: str  # derived from the decision's idempotency key: the reconcile handle
    version: VersionRef
    params: dict[str, Any]
    experiment: str
    description: str = ""


@dataclass(frozen=True)
class RunStatus:
    state: RunState
    external_id: str
    url: str | None = None
    error: str | None = None
    failed_step: str | None = None
    # what the run reported, e.g. {"model_name": "songs", "model_version": 3, "published": True}
    outputs: dict[str, Any] = field(default_factory=dict)
    log_path: str | None = None


class Backend(Protocol):
    name: str

    def ensure_version(self, spec: VersionSpec) -> VersionRef: ...

    def submit(self, request: RunRequest) -> str: ...

    def find_run(self, run_name: str) -> str | None: ...

    def status(self, external_id: str) -> RunStatus: ...

    def cancel(self, external_id: str) -> None: ...
