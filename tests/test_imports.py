"""Every module of the service imports on its own.

A merge can leave a name imported from a module that no longer defines it (only under
TYPE_CHECKING, say): mypy reads such imports as fine when the name is re-exported for typing,
and a test that never imports that module passes; `serve` then dies at start."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import trigger_service

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(trigger_service.__path__, prefix="trigger_service.")
    if not info.name.endswith(".__main__")  # runs the CLI when imported
)


def test_modules_are_found() -> None:
    assert "trigger_service.tracking.promotion" in MODULES
    assert "trigger_service.api" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name: str) -> None:
    importlib.import_module(name)


BENCH = sorted((Path(__file__).resolve().parents[1] / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCH, ids=lambda p: p.name)
def test_bench_scripts_name_what_the_project_defines(script: Path) -> None:
    # The benchmarks run by hand (not under mypy): a refactor that renames a project function
    # must not leave one importing a name that no longer exists.
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ("trigger_service", "demo", "pipeline")
        ):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{script.name}: {node.module} has no {alias.name}"
