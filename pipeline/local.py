"""Run the whole pipeline on this machine with `kfp.local` and summarise it as a RunResult.

kfp.local ignores kfp-kubernetes settings (PVC mount, secrets), which is why the models root is
a pipeline parameter. With `package`, the compiled YAML is run (as the trigger service does with
a version fetched from git) instead of the in-process definition.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.steps.runlog import FAILURE_FILE_ENV


@dataclass
class RunResult:
    status: str  # "succeeded" | "failed"
    failed_step: str | None = None
    error: str | None = None
    published: bool = False
    model_version: int | None = None
    model_path: str | None = None
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


def run_local(
    arguments: Mapping[str, object], package: Path | None = None, pipeline_root: Path | None = None
) -> RunResult:
    """Run the pipeline to the end or to the first failing task; never raises for a task."""
    import kfp.local

    with _workspace(pipeline_root) as root, _failure_file(root) as failures:
        kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
        try:
            pipeline = _load(package)
            task = pipeline(**typed_arguments(pipeline, arguments))
        except RuntimeError as error:  # kfp.local: a task failed
            return _failed(error, failures)
        except Exception as error:  # no task ran: unreadable package or arguments it refuses
            return RunResult(status="failed", error=f"{type(error).__name__}: {error}")
        return _succeeded(task.outputs)


def typed_arguments(pipeline: Any, arguments: Mapping[str, object]) -> dict[str, Any]:
    """Convert text values (from `--param`) to the types the pipeline itself declares, so a
    compiled package from another commit is run with its own parameters."""
    inputs = pipeline.component_spec.inputs or {}
    unknown = sorted(set(arguments) - set(inputs))
    if unknown:
        raise ValueError(
            f"unknown pipeline parameter(s) {', '.join(unknown)}; "
            f"the pipeline takes {', '.join(sorted(inputs))}"
        )
    typed = {}
    for key, value in arguments.items():
        kind = inputs[key].type
        try:
            typed[key] = _PARSERS[kind](value) if isinstance(value, str) else value
        except (KeyError, ValueError) as error:
            raise ValueError(f"parameter {key}: {value!r} is not a {kind}") from error
    return typed


def _boolean(text: str) -> bool:
    if text.lower() not in {"true", "false"}:
        raise ValueError(text)
    return text.lower() == "true"


_PARSERS: dict[str, Callable[[str], object]] = {
    "String": str,
    "Integer": int,
    "Float": float,
    "Boolean": _boolean,
}


def _load(package: Path | None) -> Any:
    if package is None:
        from pipeline.definition import training_pipeline

        return training_pipeline
    from kfp import components

    return components.load_component_from_file(str(package))


@contextlib.contextmanager
def _workspace(pipeline_root: Path | None) -> Iterator[Path]:
    """The given pipeline root (kept for inspection), or a temporary one removed afterwards."""
    if pipeline_root is not None:
        pipeline_root.mkdir(parents=True, exist_ok=True)
        yield pipeline_root.resolve()
        return
    root = Path(tempfile.mkdtemp(prefix="pipeline-local-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _failure_file(root: Path) -> Iterator[Path]:
    """Tasks append why they failed here (see runlog); the variable is restored afterwards."""
    path = root / f".failures-{os.getpid()}.jsonl"
    path.unlink(missing_ok=True)
    previous = os.environ.get(FAILURE_FILE_ENV)
    os.environ[FAILURE_FILE_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(FAILURE_FILE_ENV, None)
        else:
            os.environ[FAILURE_FILE_ENV] = previous
        path.unlink(missing_ok=True)


def _failed(error: RuntimeError, failures: Path) -> RunResult:
    lines = failures.read_text().splitlines() if failures.is_file() else []
    if lines:
        first = json.loads(lines[0])
        return RunResult(status="failed", failed_step=first["step"], error=first["error"])
    # A task died before its step began (e.g. an import error): take the step from the task
    # name kfp.local reports; task names are "<step>-<what>" (fetch-data, convert-to-onnx).
    message = _plain(str(error))
    match = re.search(r"Inner task failed: '?([a-z]+)-", message)
    return RunResult(status="failed", failed_step=match.group(1) if match else None, error=message)


def _succeeded(outputs: dict[str, Any]) -> RunResult:
    version = int(outputs["model_version"])
    return RunResult(
        status="succeeded",
        published=bool(outputs["published"]),
        model_version=version or None,
        model_path=outputs["model_path"] or None,
        reason=str(outputs["reason"]),
        metrics=json.loads(outputs["metrics_json"]),
    )


def _plain(text: str) -> str:
    """Drop the terminal colour codes kfp.local puts around names."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
