"""Shared helpers for the deployment tests: rendering overlays, loading the chart, the code's
canonical values. Rendering needs `kubectl` (its built-in kustomize); without it those tests
skip with a reason, everything else still runs."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CHART = REPO / "helm" / "kfp-gitops-trigger"
DOCKER = REPO / "docker"
DOCS = REPO / "docs" / "deployment.md"

# Overlay -> the namespace it deploys into.
OVERLAYS = {"dev": "songs-dev", "prod": "songs", "openshift": "songs-ai"}
BASE_NAMESPACE = "kfp-trigger"
SERVICE_NAME = "trigger-service"
SECRET_NAME = "trigger-service-secrets"
# Objects an overlay refers to but deliberately does not ship (secrets stay out of git).
EXTERNAL_SECRETS = {
    "dev": set(),
    "prod": {"trigger-service-secrets", "trigger-service-db", "minio-admin"},
    "openshift": {"trigger-service-secrets", "minio-admin"},
}
# The Kubernetes version whose schemas the core objects must satisfy (shipped offline by
# kubernetes-validate).
K8S_VERSION = "1.31"

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: kustomize overlays cannot be rendered"
)


def render(path: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize manifests/<path>` as a tuple of objects (a fresh copy each call)."""
    return copy.deepcopy(_render(path))


@functools.cache
def _render(path: str) -> tuple[dict[str, Any], ...]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: kustomize overlays cannot be rendered")
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(MANIFESTS / path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def find(objs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> list[dict]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name} in {deployment['metadata']['name']}")


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = [e["name"] for e in c.get("env", [])]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate env vars in {c['name']}: {sorted(dupes)}"
    return {e["name"]: e for e in c.get("env", [])}


def workloads(objs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def chart_templates() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((CHART / "templates").iterdir()) if p.is_file()}


@pytest.fixture(params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param
