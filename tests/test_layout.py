"""The code's layout holds: the layer contracts in pyproject.toml ([tool.importlinter]) are kept,
would catch a violation, and see every module; each table is written by its one stage
(`trigger_service.database.WRITERS`); the demo (repository tooling) is not shipped."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import setuptools

from trigger_service.database import WRITERS, metadata

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
        "tracking/models.py": "from trigger_service.worker import decisions",
        "console/session.py": "from trigger_service.database import runs",
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


# A write: insert(t), update(t), delete(t) (also dialect.insert(t)), t.insert() and friends, or a
# SQL string (any case) that starts with INSERT INTO / UPDATE / DELETE FROM a table.
WRITE_VERBS = {"insert", "update", "delete"}
SQL_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)


def table_writes(source: str) -> set[str]:
    """The tables a module's source writes. A table is a name imported from
    trigger_service.database, or an attribute of an imported module (`database.events`)."""
    tree = ast.parse(source)
    tables: dict[str, str] = {}  # local name -> table
    modules: set[str] = set()  # local names bound to modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "trigger_service.database":
            tables.update({a.asname or a.name: a.name for a in node.names if a.name in WRITERS})
        elif isinstance(node, ast.ImportFrom):
            modules.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names)

    def table_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return tables.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in WRITERS:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            return node.attr if isinstance(root, ast.Name) and root.id in modules else None
        return None

    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            verb = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if verb not in WRITE_VERBS:
                continue
            written = [table_of(node.args[0])] if node.args else []
            if isinstance(func, ast.Attribute):
                written.append(table_of(func.value))
            found.update(t for t in written if t is not None)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_WRITE.match(node.value)
            if match and match.group(1) in WRITERS:
                found.add(match.group(1))
    return found


def writes_by_module() -> dict[str, set[str]]:
    found = {}
    for path in sorted((REPO / "trigger_service").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        found[module] = table_writes(path.read_text(encoding="utf-8"))
    return found


def _owns(writer: str, module: str) -> bool:
    return module == writer or module.startswith(writer + ".")


def test_every_table_has_one_writer() -> None:
    assert set(WRITERS) == set(metadata.tables), "a table without a writer in WRITERS, or gone"


def test_each_table_is_written_by_its_stage_only() -> None:
    strangers = [
        f"{module} writes {table} (its writer is {WRITERS[table]})"
        for module, tables in writes_by_module().items()
        for table in sorted(tables)
        if not _owns(WRITERS[table], module)
    ]
    assert not strangers, "write through the owning stage's functions:\n" + "\n".join(strangers)


def test_each_writer_writes_its_tables() -> None:
    # WRITERS cannot go stale: a table whose writes moved elsewhere fails above or here.
    written = writes_by_module()
    idle = [
        f"{table}: {writer} never writes it"
        for table, writer in WRITERS.items()
        if not any(table in tables for module, tables in written.items() if _owns(writer, module))
    ]
    assert not idle, idle


# Modules that read another stage's table directly, and why (every other read goes through the
# owning stage's query functions: only the owner imports the table).
FOREIGN_READS = {
    # The timeline and a decision's events join events to decision_events, the worker's.
    ("trigger_service.worker.queries", "events"),
    # Tracking reports a change in its own transaction and may not import the worker.
    ("trigger_service.tracking.reports", "decisions"),
    ("trigger_service.tracking.reports", "decision_events"),
    ("trigger_service.tracking.reports", "events"),
    ("trigger_service.tracking.registrations", "decisions"),
    ("trigger_service.tracking.registrations", "decision_events"),
}


def imported_tables(source: str) -> set[str]:
    """The tables a module imports from trigger_service.database."""
    return {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "trigger_service.database"
        for alias in node.names
        if alias.name in WRITERS
    }


def test_only_the_owning_stage_imports_a_table() -> None:
    found = set()
    for path in sorted((REPO / "trigger_service").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for table in imported_tables(path.read_text(encoding="utf-8")):
            if not _owns(WRITERS[table], module):
                found.add((module, table))
    unlisted = sorted(found - FOREIGN_READS)
    assert not unlisted, f"read through the owning stage's query functions: {unlisted}"
    stale = sorted(FOREIGN_READS - found)
    assert not stale, f"FOREIGN_READS lists reads that are gone: {stale}"


def test_a_write_in_any_form_is_found() -> None:
    planted = {
        "from trigger_service.database import runs\nupdate(runs).values(state='x')": "runs",
        "from trigger_service.database import events as ev\nconn.execute(insert(ev))": "events",
        "from trigger_service.database import outbox\ndialect.insert(outbox)": "outbox",
        "from trigger_service.database import decisions\ndecisions.delete()": "decisions",
        "from trigger_service import database\nsa.delete(database.run_states)": "run_states",
        "from trigger_service.worker import decisions as d\nupdate(d.decisions)": "decisions",
        "text('UPDATE current_versions SET version = :v')": "current_versions",
        "X = 'DELETE FROM seen_objects WHERE scope = :s'": "seen_objects",
        "conn.exec_driver_sql('delete from outbox where id = 1')": "outbox",  # SQL in lower case
    }
    for source, table in planted.items():
        assert table_writes(source) == {table}, source
    # Reads, other tables' namesakes and prose are not writes.
    innocent = (
        "from trigger_service.database import runs\nselect(runs).with_for_update()",
        "runs = []\nseen.update(runs)",
        "'the UPDATE itself takes the write lock'",
    )
    for source in innocent:
        assert table_writes(source) == set(), source
