"""The Helm chart's files: Chart.yaml, values.yaml and values.schema.json agree, the schema
refuses bad values, and templates only reference values that exist and use every one. (Lint and
rendering by the real Helm engine: test_chart_render.py.)"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    REPO,
    chart_templates,
    chart_values,
)

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def _validator() -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    return jsonschema.Draft7Validator(SCHEMA)


def test_chart_yaml() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == CHART.name
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", chart["version"])
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"], "appVersion follows the package version"


def test_default_values_validate_against_the_schema() -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(chart_values())
    ]
    assert not errors, errors


def _set(values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(values)
    node = out
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    return out


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("replicaCount", 2),  # several replicas without PostgreSQL
        ("modelServer.kind", "triton"),
        ("settings.backend", "kubeflow"),
        ("settings.kfp.host", "ml-pipeline:8888"),
        ("models.root", "models"),
        ("models.pvc.accessModes", []),
        ("monitoring.prometheusRule.drift.for", "15 minutes"),
        ("secrets.values", {"github": "x"}),
        ("settings.kfp.tokenAudience", ""),
        ("settings.kfp.tokenPath", "token"),  # relative: the service's working directory
        ("networkPolicy.kfp.ports", [0]),
        ("networkPolicy.kfp.namespace", "Kubeflow"),
        ("database.dsn", "mysql://x"),
        ("settings.logLevel", "LOUD"),
        ("settings.unknownSetting", 1),
    ],
)
def test_schema_rejects_bad_values(path: str, value: Any) -> None:
    assert list(_validator().iter_errors(_set(chart_values(), path, value))), (
        f"{path}={value!r} accepted"
    )


def test_schema_accepts_the_documented_variants() -> None:
    v = chart_values()
    for variant in (
        _set(_set(v, "replicaCount", 2), "database.existingSecret", "trigger-service-db"),
        _set(_set(v, "replicaCount", 3), "database.dsn", "postgresql+psycopg://u:p@db:5432/t"),
        _set(v, "modelServer.kind", "kserve"),
        _set(v, "modelServer.kind", "none"),
        _set(_set(v, "ingress.enabled", True), "route.enabled", True),
        _set(v, "secrets.existingSecret", "my-secrets"),
    ):
        errors = [e.message for e in _validator().iter_errors(variant)]
        assert not errors, errors


def _value_paths(node: Any, prefix: str = "") -> set[str]:
    paths = {prefix} if prefix else set()
    if isinstance(node, dict):
        for k, v in node.items():
            paths |= _value_paths(v, f"{prefix}.{k}" if prefix else str(k))
    return paths


VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
ALIAS = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def test_templates_reference_only_existing_values() -> None:
    known = _value_paths(chart_values())
    unknown = []
    for name, text in chart_templates().items():
        refs = {m.group(1).lstrip(".") for m in VALUES_REF.finditer(text)}
        # `$rule := .Values.monitoring.prometheusRule` then `$rule.drift.metric`.
        for alias, target in ALIAS.findall(text):
            for m in re.finditer(rf"\${alias}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
                refs.add(target.lstrip(".") + m.group(1))
        unknown += [f"{name}: .Values.{r}" for r in sorted(refs) if r not in known]
    assert not unknown, (
        "templates reference values that values.yaml does not define:\n" + "\n".join(unknown)
    )


def test_every_value_is_used() -> None:
    text = "\n".join(chart_templates().values())
    used = {m.group(1).lstrip(".") for m in VALUES_REF.finditer(text)}
    for alias, target in ALIAS.findall(text):
        for m in re.finditer(rf"\${alias}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            used.add(target.lstrip(".") + m.group(1))
    prefixes = {u.split(".")[0] for u in used} | {
        ".".join(u.split(".")[:i]) for u in used for i in range(1, u.count(".") + 2)
    }
    values = chart_values()
    unused = [
        p
        for p in sorted(_value_paths(values))
        if p not in prefixes and not any(p.startswith(u + ".") for u in used)
    ]
    assert not unused, f"values nothing reads: {unused}"
