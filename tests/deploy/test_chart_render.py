"""The chart, rendered. No Helm binary can be installed here, so `minihelm` (Go's own
text/template plus the few Sprig functions the chart uses, in tests/deploy/minihelm) renders
it; this needs `go` (Debian package golang-go) and skips without it. Rendered objects must
validate like the kustomize ones and match the kustomize overlay they stand for: same objects,
same trigger-service pod (env names, volumes, probes, security)."""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    K8S_VERSION,
    KUBECTL,
    SECRET_NAME,
    SERVICE_NAME,
    chart_values,
    container,
    env_of,
    find,
    kfp_egress_problems,
    one,
    render,
    workloads,
)
from tests.deploy.crd_schemas import CUSTOM_RESOURCES
from tests.deploy.test_agreement import _service_models_root
from tests.deploy.test_manifests import (
    SA_TOKEN_DIR,
    _check_container_hardening,
    assert_secret_files_are_volume_items,
)

GO = shutil.which("go")
pytestmark = pytest.mark.skipif(
    GO is None,
    reason="go (Debian package golang-go) is not installed: minihelm cannot render the chart",
)
MINIHELM_SRC = Path(__file__).with_name("minihelm") / "main.go"
ALL_SECRET_KEYS = [
    "github-secret",
    "gitlab-token",
    "gitea-secret",
    "storage-token",
    "alertmanager-token",
    "manual-token",
    "git-token",
]

# Scenario -> (release namespace, value overrides (dotted paths), overlay it stands for).
SCENARIOS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "defaults": ("kfp-trigger", {}, None),
    "dev": (
        "songs-dev",
        {
            "secrets.values": {k: f"dev-{k}" for k in ALL_SECRET_KEYS},
            "settings.logLevel": "DEBUG",
            "image.pullPolicy": "Always",
            "models.pvc.size": "2Gi",
        },
        "dev",
    ),
    "prod": (
        "songs",
        {
            "replicaCount": 2,
            "database.existingSecret": "trigger-service-db",
            "modelServer.kind": "kserve",
            "ingress.enabled": True,
            "ingress.host": "trigger.songs.example.com",
            "secrets.existingSecret": "trigger-service-secrets",
            "secrets.existingSecretKeys": ALL_SECRET_KEYS,
        },
        "prod",
    ),
    "openshift": (
        "songs-ai",
        {
            "modelServer.kind": "kserve",
            "route.enabled": True,
            "rbac.dspaName": "dspa",
            "settings.kfp.host": "https://ds-pipeline-dspa.songs-ai.svc.cluster.local:8443",
            "settings.kfp.caFile": "/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt",
            "settings.kfp.tokenPath": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "networkPolicy.kfp": {
                "namespace": "",
                "podLabels": {"app": "ds-pipeline-dspa", "component": "data-science-pipelines"},
                "ports": [],
            },
            "podSecurityContext": {
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "networkPolicy.extraIngressFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"network.openshift.io/policy-group": "ingress"}
                    }
                }
            ],
            "secrets.existingSecret": "trigger-service-secrets",
            "secrets.existingSecretKeys": ALL_SECRET_KEYS,
        },
        "openshift",
    ),
    "postgres-dsn": (
        "songs",
        {
            "replicaCount": 3,
            "database.dsn": "postgresql+psycopg://u:p@db:5432/t",
            "modelServer.kind": "none",
            "minioNotification.enabled": False,
            "networkPolicy.enabled": False,
        },
        None,
    ),
}


@functools.cache
def _minihelm() -> str:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"minihelm-{os.getuid()}"
    out.mkdir(exist_ok=True)
    binary = out / "minihelm"
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GO111MODULE": "off",
        "GOCACHE": str(out / "cache"),
    }
    proc = subprocess.run(
        [GO, "build", "-o", str(binary), str(MINIHELM_SRC)],
        cwd=out,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return str(binary)


def _with(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(values)
    for path, value in overrides.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return out


def helm_template(
    namespace: str, overrides: dict[str, Any], tmp: Path
) -> subprocess.CompletedProcess[str]:
    values = _with(chart_values(), overrides)
    errors = [
        e.message
        for e in jsonschema.Draft7Validator(
            json.loads((CHART / "values.schema.json").read_text())
        ).iter_errors(values)
    ]
    assert not errors, f"the scenario's values fail the schema: {errors}"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    ctx = {
        "Values": values,
        "Chart": {
            "Name": chart["name"],
            "Version": chart["version"],
            "AppVersion": chart["appVersion"],
        },
        "Release": {"Name": "songs", "Namespace": namespace, "Service": "Helm", "IsInstall": True},
        "Capabilities": {"KubeVersion": {"Version": f"v{K8S_VERSION}.0"}},
    }
    ctx_file = tmp / "ctx.json"
    ctx_file.write_text(json.dumps(ctx))
    return subprocess.run(
        [_minihelm(), str(CHART), str(ctx_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rendered(scenario: str) -> tuple[dict[str, Any], ...]:
    return copy.deepcopy(_rendered(scenario))


@functools.cache
def _rendered(scenario: str) -> tuple[dict[str, Any], ...]:
    namespace, overrides, _ = SCENARIOS[scenario]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"minihelm-{os.getuid()}" / scenario
    tmp.mkdir(parents=True, exist_ok=True)
    proc = helm_template(namespace, overrides, tmp)
    assert proc.returncode == 0, proc.stderr
    docs = tuple(d for d in yaml.safe_load_all(proc.stdout) if d)
    # Helm sets the namespace on apply; the tests compare with kustomize, which writes it.
    for d in docs:
        d["metadata"].setdefault("namespace", namespace)
    return docs


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_renders_valid_objects(scenario: str) -> None:
    problems = []
    for obj in rendered(scenario):
        ident = f"{obj['kind']}/{obj['metadata']['name']}"
        schema = CUSTOM_RESOURCES.get((obj["apiVersion"], obj["kind"]))
        if schema is not None:
            problems += [
                f"{ident}: {list(e.absolute_path)}: {e.message}"
                for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)
            ]
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{ident}: {e.message}")
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{ident}: {'/'.join(map(str, e.path))}: {e.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_workloads_are_hardened(scenario: str) -> None:
    errs = []
    objs = rendered(scenario)
    for w in workloads(objs):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            errs += _check_container_hardening(
                f"{w['kind']}/{w['metadata']['name']}/{c['name']}", c
            )
    assert not errs, errs


def test_several_replicas_without_postgres_fail_to_render(tmp_path: Path) -> None:
    # The schema refuses it too; the template's `fail` is the guard when the schema is bypassed.
    values = _with(chart_values(), {"replicaCount": 2})
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    ctx = tmp_path / "ctx.json"
    ctx.write_text(
        json.dumps(
            {
                "Values": values,
                "Chart": {
                    "Name": chart["name"],
                    "Version": chart["version"],
                    "AppVersion": chart["appVersion"],
                },
                "Release": {"Name": "songs", "Namespace": "songs", "Service": "Helm"},
            }
        )
    )
    proc = subprocess.run(
        [_minihelm(), str(CHART), str(ctx)], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0 and "needs PostgreSQL" in proc.stderr


def test_default_values_generate_the_in_cluster_tokens() -> None:
    objs = rendered("defaults")
    secret = one(objs, "Secret", "trigger-service-secrets")
    assert sorted(secret["data"]) == ["alertmanager-token", "manual-token", "storage-token"]
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert {n for n in env if n.endswith("_TOKEN_FILE") or n.endswith("_SECRET_FILE")} == {
        "TRIGGER_STORAGE_TOKEN_FILE",
        "TRIGGER_ALERTMANAGER_TOKEN_FILE",
        "TRIGGER_MANUAL_TOKEN_FILE",
    }


def test_postgres_dsn_scenario() -> None:
    objs = rendered("postgres-dsn")
    dep = one(objs, "Deployment", SERVICE_NAME)
    env = env_of(container(dep, "trigger-service"))
    ref = env["TRIGGER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "trigger-service-db", "key": "dsn"}
    assert one(objs, "Secret", "trigger-service-db")["data"]["dsn"]
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not find(objs, "PersistentVolumeClaim", "trigger-service-data")
    assert one(objs, "PodDisruptionBudget", SERVICE_NAME)["spec"] == {
        "minAvailable": 1,
        "selector": dep["spec"]["selector"],
    }
    assert not find(objs, "InferenceService") and not find(objs, "Deployment", "ovms-songs")
    assert env["TRIGGER_MODEL_SERVER"]["value"] == "none"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_secret_files_are_volume_items(scenario: str) -> None:
    """Each TRIGGER_*_FILE is an item of the Secret volume, and a Secret the chart makes holds
    every item's key: no setting names a file that is not there."""
    objs = rendered(scenario)
    dep = one(objs, "Deployment", SERVICE_NAME)
    assert_secret_files_are_volume_items(dep)
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    keys = {i["key"] for i in vol["secret"]["items"]}
    for secret in find(objs, "Secret", SECRET_NAME):
        assert keys <= set(secret["data"]), sorted(keys - set(secret["data"]))
    if SCENARIOS[scenario][1].get("secrets.existingSecret"):
        assert keys == set(SCENARIOS[scenario][1]["secrets.existingSecretKeys"])


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_mounts_the_models_pvc_read_only(scenario: str) -> None:
    values = _with(chart_values(), SCENARIOS[scenario][1])
    root, vol = _service_models_root(rendered(scenario))
    assert root == values["models"]["root"]
    assert vol["persistentVolumeClaim"]["claimName"] == values["models"]["pvc"]["name"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_kfp_token(scenario: str) -> None:
    dep = one(rendered(scenario), "Deployment", SERVICE_NAME)
    pod = dep["spec"]["template"]["spec"]
    env = env_of(container(dep, "trigger-service"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert pod["automountServiceAccountToken"] is True
    if scenario == "openshift":  # the pod's own token, for the DSPA's proxy
        assert env["TRIGGER_KFP_TOKEN_PATH"]["value"] == f"{SA_TOKEN_DIR}/token"
        assert "kfp-token" not in volumes
    else:
        assert env["TRIGGER_KFP_TOKEN_PATH"]["value"] == "/var/run/secrets/kubeflow/pipelines/token"
        (source,) = volumes["kfp-token"]["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"


@pytest.mark.parametrize("scenario", [s for s in sorted(SCENARIOS) if s != "postgres-dsn"])
def test_chart_kfp_egress_follows_the_host(scenario: str) -> None:
    objs = rendered(scenario)
    np = one(objs, "NetworkPolicy", SERVICE_NAME)
    host = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))[
        "TRIGGER_KFP_HOST"
    ]["value"]
    problems = kfp_egress_problems(np, host, np["metadata"]["namespace"])
    assert not problems, problems


@pytest.mark.parametrize(
    ("host", "ports", "expected"),
    [
        ("http://ml-pipeline.kubeflow.svc.cluster.local:8888", [], [8888]),
        ("https://ml-pipeline.kubeflow.svc.cluster.local", [], [443]),
        ("http://ml-pipeline.kubeflow.svc.cluster.local", [], [80]),
        # The UI's Service maps 80 to its pods' 3000: the policy needs the pods' port.
        ("http://ml-pipeline-ui.kubeflow.svc.cluster.local", [3000], [3000]),
    ],
)
def test_chart_kfp_egress_ports(
    host: str, ports: list[int], expected: list[int], tmp_path: Path
) -> None:
    proc = helm_template(
        "songs", {"settings.kfp.host": host, "networkPolicy.kfp.ports": ports}, tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    (np,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    (rule,) = [
        r
        for r in np["spec"]["egress"]
        if any("kubernetes.io/metadata.name" in str(peer) for peer in r.get("to", []))
    ]
    assert rule["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}}
    ]
    assert [p["port"] for p in rule["ports"]] == expected


# --- the chart and the kustomize overlays produce the same objects ---------------------------

COMPARED = [s for s, (_, _, overlay) in SCENARIOS.items() if overlay]


def _ids(objs: tuple[dict[str, Any], ...]) -> set[tuple[str, str]]:
    # ConfigMaps and Secrets differ by design: kustomize generates hashed ConfigMaps and (dev)
    # Secrets; the chart makes one rules ConfigMap and creates or reuses the Secret.
    return {
        (o["kind"], o["metadata"]["name"]) for o in objs if o["kind"] not in ("ConfigMap", "Secret")
    }


@pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: kustomize overlays cannot be rendered"
)
@pytest.mark.parametrize("scenario", COMPARED)
def test_chart_produces_the_overlays_objects(scenario: str) -> None:
    overlay = SCENARIOS[scenario][2]
    chart_ids, kustomize_ids = _ids(rendered(scenario)), _ids(render(f"overlays/{overlay}"))
    assert chart_ids == kustomize_ids, (
        f"only in chart: {sorted(chart_ids - kustomize_ids)}; "
        f"only in kustomize: {sorted(kustomize_ids - chart_ids)}"
    )


def _pod_shape(dep: dict[str, Any]) -> dict[str, Any]:
    pod = dep["spec"]["template"]["spec"]
    c = container(dep, "trigger-service")
    volumes = {v["name"]: {k: v[k] for k in v if k != "name"} for v in pod["volumes"]}
    for v in volumes.values():
        v.get("configMap", {}).pop("name", None)  # kustomize hashes the rules ConfigMap's name
        if "items" in v.get("secret", {}):  # the chart lists a Secret's keys sorted
            v["secret"]["items"] = sorted(v["secret"]["items"], key=lambda i: i["key"])
    return {
        "replicas": dep["spec"]["replicas"],
        "strategy": dep["spec"]["strategy"]["type"],
        "selector": dep["spec"]["selector"],
        "serviceAccountName": pod["serviceAccountName"],
        "automountServiceAccountToken": pod.get("automountServiceAccountToken"),
        "podSecurityContext": pod["securityContext"],
        "volumes": volumes,
        "mounts": sorted(
            (m["name"], m["mountPath"], m.get("readOnly", False)) for m in c["volumeMounts"]
        ),
        "ports": c["ports"],
        "probes": {p: c[p] for p in ("startupProbe", "livenessProbe", "readinessProbe")},
        "securityContext": c["securityContext"],
        "args": c["args"],
        "workingDir": c["workingDir"],
        "pullPolicy": c["imagePullPolicy"],
    }


@pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: kustomize overlays cannot be rendered"
)
@pytest.mark.parametrize("scenario", COMPARED)
def test_chart_trigger_service_pod_matches_the_overlay(scenario: str) -> None:
    overlay = SCENARIOS[scenario][2]
    chart_dep = one(rendered(scenario), "Deployment", SERVICE_NAME)
    kust_dep = one(render(f"overlays/{overlay}"), "Deployment", SERVICE_NAME)
    assert _pod_shape(chart_dep) == _pod_shape(kust_dep)
    chart_env = env_of(container(chart_dep, "trigger-service"))
    kust_env = env_of(container(kust_dep, "trigger-service"))
    # The chart sets every setting explicitly; whatever kustomize sets, it sets the same way.
    missing = sorted(set(kust_env) - set(chart_env))
    assert not missing, f"env only kustomize sets: {missing}"
    differ = {
        n: (chart_env[n], kust_env[n])
        for n in kust_env
        if {k: v for k, v in chart_env[n].items()} != kust_env[n]
    }
    assert not differ, differ


@pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: kustomize overlays cannot be rendered"
)
@pytest.mark.parametrize("scenario", COMPARED)
def test_chart_specs_match_the_overlay(scenario: str) -> None:
    """Object by object, the specs agree (labels and generated names aside)."""
    overlay = SCENARIOS[scenario][2]
    chart_objs, kust_objs = rendered(scenario), render(f"overlays/{overlay}")
    skip = {"Deployment/trigger-service"}  # compared above, env order differs
    diffs = []
    for kind, name in sorted(_ids(chart_objs) & _ids(kust_objs)):
        if f"{kind}/{name}" in skip:
            continue
        a, b = one(chart_objs, kind, name), one(kust_objs, kind, name)
        for field in ("spec", "rules", "roleRef", "subjects", "automountServiceAccountToken"):
            if field not in a and field not in b:
                continue
            left, right = _normalise(a.get(field)), _normalise(b.get(field))
            if left != right:
                diffs.append(f"{kind}/{name}.{field}:\n  chart:     {left}\n  kustomize: {right}")
    assert not diffs, "\n".join(diffs)


def _normalise(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _normalise(v) for k, v in node.items() if k not in ("namespace",)}
        if isinstance(out.get("env"), list):  # kustomize's merge patches reorder env
            out["env"] = sorted(out["env"], key=lambda e: e["name"])
        # Template labels carry the chart's instance/part-of labels; selectors do not.
        if "labels" in out and isinstance(out["labels"], dict):
            out["labels"] = {
                k: v
                for k, v in out["labels"].items()
                if k
                in (
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/component",
                    "app.kubernetes.io/instance",
                )
            }
        return out
    if isinstance(node, list):
        return [_normalise(v) for v in node]
    return node
