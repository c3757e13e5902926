"""Every module of the service imports on its own.

A merge can leave a name imported from a module that no longer defines it (only under
TYPE_CHECKING, say): mypy reads such imports as fine when the name is re-exported for typing,
and a test that never imports that module passes; `serve` then dies at start."""

from __future__ import annotations

import importlib
import pkgutil

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
