"""The code's layout holds: the layer contracts in pyproject.toml ([tool.importlinter]) are kept,
would catch a violation, and see every module; the demo (repository tooling) is not shipped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import setuptools

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("trigger_service", "pipeline", "demo")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's CLI over the packages under `root`, with `root`'s pyproject.toml."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
            "--no-cache",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_layer_contracts_are_kept() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_violation_of_each_contract_is_found(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    plant = {
        "rules/globs.py": "import sqlalchemy",
        "sources/github.py": "from trigger_service.inbox import store",
        "worker/admission.py": "import tensorflow",
        "tracking/runs.py": "from pipeline import cli",
        "versions/git.py": "from fastapi import HTTPException",
        "newstage/__init__.py": "import starlette",  # a package no contract names yet
        "tracking/cancel.py": "from trigger_service.api import errors",
        "worker/loop.py": "import kfp",
        "service.py": "import demo",
    }
    for module, line in plant.items():
        path = tmp_path / "trigger_service" / module
        path.parent.mkdir(exist_ok=True)
        before = path.read_text() if path.exists() else ""
        path.write_text(before + f"\n{line}  # planted by the test\n")

    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout
    assert "0 kept" in report, report
    for module, line in plant.items():
        importer = "trigger_service." + module.removesuffix(".py").removesuffix("/__init__")
        importer = importer.replace("/", ".")
        imported = line.split()[1]
        assert f"{importer} -> {imported}" in report, (importer, imported, report)


def test_the_contracts_see_every_module() -> None:
    # import-linter's graph (grimp) leaves out a folder without __init__.py (a namespace
    # package): its modules would escape every contract without a word.
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
    }
    missing = sorted(modules - graph.modules)
    assert not missing, f"modules the layer contracts do not see (no __init__.py?): {missing}"


def test_the_demo_ships_in_neither_the_wheel_nor_an_image() -> None:
    # The wheel holds what [tool.setuptools.packages.find] includes (namespaces on, its default).
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = setuptools.find_namespace_packages(
        REPO, include=include["packages"]["find"]["include"]
    )
    assert {"trigger_service", "pipeline"} <= set(shipped)
    assert not [name for name in shipped if name.split(".")[0] in ("demo", "tests", "bench")]
    dockerfiles = sorted((REPO / "docker").glob("*.Dockerfile"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        copied = re.findall(r"^COPY (?!--from)(.*) \S+$", dockerfile.read_text(), re.M)
        sources = {source for line in copied for source in line.split()}
        assert sources and not sources & {".", "demo", "demo/"}, (dockerfile.name, sources)
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text()
        assert "!demo" not in ignore, dockerfile.name
