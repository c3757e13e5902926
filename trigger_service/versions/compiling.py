"""Compiling a pipeline module at a commit: `python -m MODULE compile --output OUT --image IMAGE`,
always in a sandbox (the commit is untrusted; see versions/sandbox.py).

    Compiler.compile(pipeline, tree, commit, output) -> None
        writes the compiled YAML to `output`; raises PermanentError naming the module, the commit
        and the reason (exit status and last line of stderr, timeout, no output)

`make_compiler(settings)` picks the sandbox: a Kubernetes Job for `backend: kfp` (or
TRIGGER_COMPILE_SANDBOX=kubernetes), a local child process otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from trigger_service.errors import PermanentError
from trigger_service.rules import PipelineSpec
from trigger_service.settings import Settings
from trigger_service.versions.sandbox import Limits, Mode, ProcessSandbox, Sandbox

OUTPUT = "pipeline.yaml"


class Compiler(Protocol):
    def compile(self, pipeline: PipelineSpec, tree: Path, commit: str, output: Path) -> None: ...


def compile_command(pipeline: PipelineSpec, commit: str, python: str, output: str) -> list[str]:
    """The module's compile CLI; the image is the commit's own (from `image_template`)."""
    command = [python, "-m", str(pipeline.source.module), "compile", "--output", output]
    image = pipeline.source.image_for(commit)
    if image:
        command += ["--image", image]
    return command


class ProcessCompiler:
    """Compiles in a local child process inside `sandbox`."""

    def __init__(self, sandbox: Sandbox, python: str = sys.executable) -> None:
        self.sandbox = sandbox
        self.python = python

    def compile(self, pipeline: PipelineSpec, tree: Path, commit: str, output: Path) -> None:
        what = f"compiling {pipeline.source.module} at {commit[:12]}"
        command = compile_command(pipeline, commit, self.python, f"{{output_dir}}/{OUTPUT}")
        try:
            result, compiled = self.sandbox.run(command, tree, OUTPUT)
        except PermanentError as exc:
            raise PermanentError(f"{what}: {exc}") from exc
        if result.returncode != 0 or not compiled:
            tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            status = f"exit {result.returncode}" if result.returncode else "no output"
            raise PermanentError(f"{what}: {status}: {tail[:300]}")
        output.write_bytes(compiled)


def secret_paths(settings: Settings) -> list[Path]:
    """Files holding the service's credentials: hidden from whatever a commit runs."""
    paths = [
        getattr(settings, name)
        for name in type(settings).model_fields
        if name.endswith("_file") and getattr(settings, name) is not None
    ]
    if settings.kfp_token_path is not None:
        paths.append(settings.kfp_token_path)
    # The pod's own service-account token (a cluster running backend local or shadow).
    paths.append(Path("/var/run/secrets/kubernetes.io/serviceaccount"))
    return [Path(p) for p in paths]


def private_paths(settings: Settings) -> list[Path]:
    """What a compile must not read beside the secrets: the service's data. The git cache holds
    every tracked repository (another team's private code), the store every event, the runs,
    data and models folders the local backend's work."""
    paths = [
        settings.git_cache_dir,
        settings.runs_dir,
        settings.data_dir,
        settings.models_root,
    ]
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(url.database)
        paths += [db, *(db.with_name(db.name + end) for end in ("-wal", "-shm", "-journal"))]
    return [*secret_paths(settings), *paths]


def make_compiler(settings: Settings) -> Compiler:
    sandbox = settings.compile_sandbox
    if sandbox == "kubernetes" or (sandbox == "auto" and settings.backend == "kfp"):
        from trigger_service.versions.k8s_compile import JobCompiler

        return JobCompiler.from_settings(settings)
    limits = Limits(
        wall_seconds=settings.compile_timeout_seconds,
        cpu_seconds=max(1, int(settings.compile_timeout_seconds)),
        memory_bytes=settings.compile_memory_bytes,
    )
    mode: Mode = (
        "plain" if sandbox == "plain" else "namespaces" if sandbox == "namespaces" else "auto"
    )
    return ProcessCompiler(ProcessSandbox(limits, private_paths(settings), mode))
