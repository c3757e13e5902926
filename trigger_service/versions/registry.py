"""Resolving a decision's version request to a registered pipeline version.

    head    a push (or a poll): ask git for the branch head now (the run fires at it), refuse
            one already built or older than the branch's current version (NothingToBuild),
            register it; it becomes the branch's current version once the run is submitted
    current data/drift: the branch's current version (bootstrapped from the branch head)
    pinned  the rules file names the version
    named   a manual trigger names it: a registered version, a full commit id, a short one
            (resolved in the branch's history, refused when ambiguous), or a branch

Obtaining a version: the compiled YAML at the configured path of that commit, or the module
compiled in a sandbox (versions/compiling.py) with the commit's own component image.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from trigger_service.database import current_versions, pipeline_versions, write
from trigger_service.errors import PermanentError
from trigger_service.rules import PipelineSpec, VersionRequest
from trigger_service.submit.base import Backend, VersionRef, VersionSpec
from trigger_service.versions.compiling import Compiler, ProcessCompiler
from trigger_service.versions.git import BranchGone, GitCache
from trigger_service.versions.refs import branch_name, inside, is_short_id, version_name
from trigger_service.versions.sandbox import Limits, ProcessSandbox

FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
SHORT = 12
# A force push moves the current version; the decision says so.
FORCED: dict[str, str] = {
    "diverged": "force push: the current version moves from {current} to {head}, which does "
    "not descend from it",
    "unrelated": "force push: the current version moves from {current} to {head}, which shares "
    "no history with it",
    "missing": "force push: the current version {current} is no longer in the repository; it "
    "moves to {head}",
}


def current_version(engine: Engine, pipeline: str, branch: str) -> str | None:
    """The branch's current version: the commit of the last run a push (or poll) submitted."""
    with engine.connect() as conn:
        return conn.execute(
            select(current_versions.c.version).where(
                current_versions.c.pipeline == pipeline, current_versions.c.branch == branch
            )
        ).scalar()


class NothingToBuild(Exception):
    """The branch head is already built, or older than the current version: no run."""


@dataclass(frozen=True)
class Resolved:
    """A registered version, what to say about it, and the branch it becomes current for once
    its run is submitted (None: it does not move any branch)."""

    ref: VersionRef
    note: str | None = None
    current_for: str | None = None


class VersionRegistry:
    """Resolves a decision's version request to a commit and registers it with the backend.

    `packages_dir`: where each version's compiled package is kept (re-uploads read it);
    `compile_timeout`: seconds a compile may take when `compiler` is not given."""

    def __init__(
        self,
        *,
        engine: Engine,
        backend: Backend,
        git: GitCache,
        packages_dir: Path,
        compile_timeout: float,
        clock: Callable[[], float] = time.time,
        compiler: Compiler | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.git = git
        self.packages_dir = packages_dir.resolve()
        self.compile_timeout = compile_timeout
        self.clock = clock
        self.compiler = compiler or ProcessCompiler(
            ProcessSandbox(Limits(wall_seconds=compile_timeout))
        )

    def resolve(self, pipeline: PipelineSpec, request: VersionRequest, event_id: str) -> Resolved:
        """The version a decision runs. Raises NothingToBuild, PermanentError, TemporaryError."""
        branch = request.branch or pipeline.source.branch
        if request.kind in ("head", "commit"):
            return self._head(pipeline, branch, event_id)
        if request.kind in ("pinned", "named"):
            assert request.name is not None
            return Resolved(self._named(pipeline, request.name, event_id))
        current = self.current(pipeline.name, branch)
        if current is not None:
            return Resolved(self._ref(pipeline, current))
        head = self.git.fetch_branch(pipeline.source.repository, branch)
        reason = f"head of {branch} (no current version yet)"
        return Resolved(self.register_commit(pipeline, head, branch, reason, event_id, True))

    def resume(self, pipeline: PipelineSpec, request: VersionRequest, version: str) -> Resolved:
        """The version an earlier attempt of the same decision already chose (and may have run)."""
        moves = request.kind in ("head", "commit")
        return Resolved(
            self._ref(pipeline, version),
            current_for=(request.branch or pipeline.source.branch) if moves else None,
        )

    def _head(self, pipeline: PipelineSpec, branch: str, event_id: str) -> Resolved:
        url = pipeline.source.repository
        try:
            head = self.git.fetch_branch(url, branch)
        except BranchGone as gone:  # deleted while the decision waited (debounce, queue)
            raise NothingToBuild(f"branch {branch} no longer exists: {gone}") from gone
        current = self.current(pipeline.name, branch)
        relation = self.git.relation(url, current, head)
        if relation == "same":
            raise NothingToBuild(f"already built at {head[:SHORT]}")
        if relation == "older":
            assert current is not None
            raise NothingToBuild(
                f"the head of {branch}, {head[:SHORT]}, is older than the current version "
                f"{current[:SHORT]}"
            )
        note = FORCED.get(relation, "").format(current=(current or "")[:SHORT], head=head[:SHORT])
        reason = note or f"head of {branch}"
        ref = self.register_commit(pipeline, head, branch, reason, event_id, make_current=False)
        return Resolved(ref, note or None, current_for=branch)

    def set_current(
        self, conn: Connection, pipeline: str, branch: str, version: str, event_id: str, reason: str
    ) -> None:
        """Record `version` as the branch's current one, in the caller's transaction."""
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        values = {
            "version": version,
            "updated_at": self.clock(),
            "event_id": event_id,
            "reason": reason,
        }
        conn.execute(
            dialect.insert(current_versions)
            .values(pipeline=pipeline, branch=branch, **values)
            .on_conflict_do_update(index_elements=["pipeline", "branch"], set_=values)
        )

    def current(self, pipeline: str, branch: str) -> str | None:
        return current_version(self.engine, pipeline, branch)

    def _named(self, pipeline: PipelineSpec, name: str, event_id: str) -> VersionRef:
        # Checked at the edge already; checked again because stored requests outlive code.
        name = version_name(name, "version")
        with self.engine.connect() as conn:
            known = conn.execute(
                select(pipeline_versions.c.version).where(
                    pipeline_versions.c.pipeline == pipeline.name,
                    pipeline_versions.c.version == name,
                )
            ).scalar()
        if known is not None:
            return self._ref(pipeline, known)
        if FULL_SHA.fullmatch(name):
            return self.register_commit(pipeline, name, None, "named version", event_id, False)
        url = pipeline.source.repository
        if is_short_id(name):
            commit = self.git.resolve_short(url, pipeline.source.branch, name)
            return self.register_commit(pipeline, commit, None, f"named {name}", event_id, False)
        head = self.git.fetch_branch(url, branch_name(name, "version"))
        return self.register_commit(pipeline, head, name, f"head of {name}", event_id, False)

    def ref(self, pipeline: PipelineSpec, version: str) -> VersionRef:
        """A version registered earlier."""
        return self._ref(pipeline, version)

    def _ref(self, pipeline: PipelineSpec, version: str) -> VersionRef:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pipeline_versions).where(
                    pipeline_versions.c.pipeline == pipeline.name,
                    pipeline_versions.c.version == version,
                )
            ).one()
        return VersionRef(
            pipeline=pipeline.kfp_pipeline,
            version=version,
            pipeline_id=row.backend_pipeline_id,
            version_id=row.backend_version_id,
            package_path=Path(row.package_path),
        )

    def register_commit(
        self,
        pipeline: PipelineSpec,
        commit: str,
        branch: str | None,
        reason: str,
        event_id: str,
        make_current: bool,
    ) -> VersionRef:
        """Obtain the pipeline at `commit` and register it as the version named by the commit."""
        package = self.package_for(pipeline, commit)
        ref = self.backend.ensure_version(
            VersionSpec(
                pipeline=pipeline.kfp_pipeline,
                version=commit,
                package_path=package,
                description=f"{pipeline.source.repository}@{commit} ({reason})",
            )
        )
        now = self.clock()
        with write(self.engine) as conn:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                dialect.insert(pipeline_versions)
                .values(
                    pipeline=pipeline.name,
                    version=commit,
                    commit=commit,
                    branch=branch,
                    package_path=str(package),
                    package_sha256=hashlib.sha256(package.read_bytes()).hexdigest(),
                    backend_pipeline_id=ref.pipeline_id,
                    backend_version_id=ref.version_id,
                    created_at=now,
                    reason=reason,
                )
                .on_conflict_do_nothing()
            )
            if make_current and branch is not None:
                self.set_current(conn, pipeline.name, branch, commit, event_id, reason)
        return ref

    def package_for(self, pipeline: PipelineSpec, commit: str) -> Path:
        """The compiled pipeline of `commit`, cached by (pipeline, commit)."""
        target = inside(self.packages_dir, pipeline.name, f"{commit}.yaml")
        if target.is_file():
            return target
        tree = self.git.checkout(pipeline.source.repository, commit)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{commit}.tmp.yaml")  # kfp wants a .yaml name
        if pipeline.source.package_path:
            source = tree / pipeline.source.package_path
            if not source.is_file():
                raise PermanentError(
                    f"{pipeline.source.package_path} does not exist at commit {commit[:12]}"
                )
            shutil.copyfile(source, staging)
        else:
            self._compile(pipeline, tree, commit, staging)
        staging.replace(target)
        return target

    def _compile(self, pipeline: PipelineSpec, tree: Path, commit: str, output: Path) -> None:
        self.compiler.compile(pipeline, tree, commit, output)
