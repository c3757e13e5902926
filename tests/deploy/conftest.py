"""Shared helpers for the deployment tests: the chart rendered by the real Helm engine
(helm-python-sdk) for each profile, the checked-in kustomize trees (`kubectl kustomize`; where
kubectl is absent, the trees' files read as their generated kustomization says), and the code's
canonical values."""

from __future__ import annotations

import copy
import functools
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CHART = REPO / "helm" / "kfp-gitops-trigger"
DOCKER = REPO / "docker"
DOCS = REPO / "docs" / "deployment.md"

# Overlay -> the namespace it deploys into.
OVERLAYS = {"dev": "songs-dev", "prod": "songs", "openshift": "songs-ai"}
PROFILES_DIR = REPO / "helm" / "profiles"
# Chart profile -> (values files under helm/profiles, --set expressions, release namespace).
PROFILES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "defaults": ((), (), "kfp-trigger"),
    "dev": (("dev.yaml",), (), "songs-dev"),
    "prod": (("prod.yaml",), (), "songs"),
    "openshift": (("openshift.yaml",), (), "songs-ai"),
    "external-postgres": (("external-postgres.yaml",), (), "songs"),
}
BASE_NAMESPACE = "kfp-trigger"
SERVICE_NAME = "trigger-service"
SECRET_NAME = "trigger-service-secrets"
# Objects an overlay refers to but deliberately does not ship (secrets stay out of git).
EXTERNAL_SECRETS = {
    "base": {"trigger-service-secrets", "minio-admin"},
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
        return _read_tree(path)
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(MANIFESTS / path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def _load_renderer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "render_manifests", REPO / "helm" / "render_manifests.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_manifests", module)
    spec.loader.exec_module(module)
    return module


# helm/render_manifests.py: the one renderer `make manifests` and these tests share.
renderer = _load_renderer()


def helm_render(
    namespace: str, files: tuple[str | Path, ...] = (), sets: tuple[str, ...] = ()
) -> tuple[dict[str, Any], ...]:
    """`helm template trigger-service helm/kfp-gitops-trigger -n NS -f FILE... --set EXPR...`
    as objects, each with the release namespace set (Helm sets it on apply)."""
    values = renderer.user_values([PROFILES_DIR / f for f in files], sets)
    docs = tuple(
        d
        for text in renderer.render(values, namespace).values()
        for d in yaml.safe_load_all(text)
        if d
    )
    for d in docs:
        d["metadata"].setdefault("namespace", namespace)
    return docs


def rendered(profile: str) -> tuple[dict[str, Any], ...]:
    """The chart rendered for a profile of PROFILES (a fresh copy each call)."""
    return copy.deepcopy(_rendered(profile))


@functools.cache
def _rendered(profile: str) -> tuple[dict[str, Any], ...]:
    files, sets, namespace = PROFILES[profile]
    return helm_render(namespace, files, sets)


@pytest.fixture(params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> str:
    return request.param


def _read_tree(path: str) -> tuple[dict[str, Any], ...]:
    """Without kubectl: what kustomize makes of a generated tree (its kustomization only sets a
    namespace and one label on the listed files; test_kustomize_builds_the_charts_objects
    checks that with kubectl where it exists)."""
    tree = MANIFESTS / path
    kustomization = yaml.safe_load((tree / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "namespace", "labels", "resources"}
    (labels,) = kustomization["labels"]
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((tree / name).read_text()):
            if doc:
                doc["metadata"]["namespace"] = kustomization["namespace"]
                doc["metadata"].setdefault("labels", {}).update(labels["pairs"])
                docs.append(doc)
    return tuple(docs)


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


# Labels of the KFP API server's pods, by Service name: Kubeflow's ml-pipeline, and the
# Data Science Pipelines operator's ds-pipeline-<dspa> (its deployment template).
KFP_API_POD_LABELS = {
    "ml-pipeline": {"app": "ml-pipeline"},
    "ds-pipeline-dspa": {
        "app": "ds-pipeline-dspa",
        "component": "data-science-pipelines",
        "dspa": "dspa",
    },
}


def kfp_egress_problems(policy: dict[str, Any], host: str, namespace: str) -> list[str]:
    """Why the NetworkPolicy would not let the service reach TRIGGER_KFP_HOST
    (http(s)://<service>.<namespace>.svc[.cluster.local][:port]) - empty if it does. The port
    must be the host's (the Service's port equals its pods' port for ml-pipeline and the DSPA),
    and the rule that admits it must allow no other port."""
    url = urlsplit(host)
    service, _, rest = (url.hostname or "").partition(".")
    target_ns = rest.split(".")[0] or namespace
    port = url.port or (443 if url.scheme == "https" else 80)
    labels = KFP_API_POD_LABELS.get(service, {})

    def admits(peer: dict[str, Any]) -> bool:
        ns_sel = peer.get("namespaceSelector")
        if ns_sel is None:
            ns_ok = target_ns == namespace
        else:
            wanted = ns_sel.get("matchLabels", {})
            ns_ok = all(
                v == target_ns and k == "kubernetes.io/metadata.name" for k, v in wanted.items()
            )
        pod_sel = peer.get("podSelector", {}).get("matchLabels", {})
        return ns_ok and all(labels.get(k) == v for k, v in pod_sel.items())

    rules = [
        r
        for r in policy["spec"]["egress"]
        if any(p.get("port") == port for p in r.get("ports", []))
        and any(admits(peer) for peer in r.get("to", []))
    ]
    if not rules:
        return [f"no egress rule admits {service} in {target_ns} on {port} ({host})"]
    return [
        f"the KFP egress rule allows more than port {port}: {r['ports']}"
        for r in rules
        if [p.get("port") for p in r["ports"]] != [port]
    ]
