"""Resolving a decision's version request to a registered pipeline version.

    commit  a push: obtain the pipeline at that commit, register it, make it the branch's current
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
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from trigger_service.database import current_versions, pipeline_versions, write
from trigger_service.errors import PermanentError
from trigger_service.rules import PipelineSpec, VersionRequest
from trigger_service.submit.base import Backend, VersionRef, VersionSpec
from trigger_service.versions.compiling import Compiler, ProcessCompiler
from trigger_service.versions.git import GitCache
from trigger_service.versions.refs import branch_name, inside, is_short_id, version_name
from trigger_service.versions.sandbox import Limits, ProcessSandbox

FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class VersionRegistry:
    def __init__(
        self,
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

    def resolve(self, pipeline: PipelineSpec, request: VersionRequest, event_id: str) -> VersionRef:
        branch = request.branch or pipeline.source.branch
        if request.kind == "commit":
            assert request.commit is not None
            return self.register_commit(
                pipeline, request.commit, branch, f"push to {branch}", event_id, make_current=True
            )
        if request.kind in ("pinned", "named"):
            assert request.name is not None
            return self._named(pipeline, request.name, event_id)
        current = self.current(pipeline.name, branch)
        if current is not None:
            return self._ref(pipeline, current)
        head = self.git.resolve_branch(pipeline.source.repository, branch)
        return self.register_commit(
            pipeline, head, branch, f"head of {branch} (no current version yet)", event_id, True
        )

    def current(self, pipeline: str, branch: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(current_versions.c.version).where(
                    current_versions.c.pipeline == pipeline, current_versions.c.branch == branch
                )
            ).scalar()

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
                values = {
                    "version": commit,
                    "updated_at": now,
                    "event_id": event_id,
                    "reason": reason,
                }
                conn.execute(
                    dialect.insert(current_versions)
                    .values(pipeline=pipeline.name, branch=branch, **values)
                    .on_conflict_do_update(index_elements=["pipeline", "branch"], set_=values)
                )
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
