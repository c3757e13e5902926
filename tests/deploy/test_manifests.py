"""The kustomize trees under manifests/, which `make manifests` renders from the chart: they
equal a fresh rendering (a test fails when they are stale), `kubectl kustomize` builds each into
the chart's objects, every core object validates against the Kubernetes API schemas (offline,
kubernetes-validate), custom resources against their CRDs, references resolve, and the
workloads are hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    BASE_NAMESPACE,
    DOCS,
    EXTERNAL_SECRETS,
    K8S_VERSION,
    MANIFESTS,
    OVERLAYS,
    SECRET_NAME,
    SERVICE_NAME,
    container,
    env_of,
    find,
    helm_render,
    kfp_egress_problems,
    needs_kubectl,
    one,
    render,
    renderer,
    workloads,
)
from tests.deploy.crd_schemas import CUSTOM_RESOURCES, crd_problems

KUBEFLOW_DOC = DOCS.with_name("kubeflow.md")

ALL_TARGETS = ["base", *(f"overlays/{o}" for o in sorted(OVERLAYS))]
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
# TRIGGER_<NAME>_FILE of a webhook or git secret (not TRIGGER_KFP_CA_FILE).
SECRET_FILE_SUFFIXES = ("_SECRET_FILE", "_TOKEN_FILE", "_KEY_FILE")
SECRETS_DIR = "/etc/trigger/secrets"
# The pod's own service-account token and, on OpenShift, the service CA next to it.
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_METRICS = {
    "trigger_events_received_total",
    "trigger_dead_letters_total",
    "trigger_inbox_depth",
    "trigger_submit_failures_total",
    "trigger_runs_total",
    "trigger_decisions_total",
    "trigger_alerts_truncated_total",
}


def test_rendered_manifests_equal_the_checked_in_ones() -> None:
    stale = renderer.stale()
    assert not stale, f"stale (run `make manifests`): {stale}"


def test_a_stale_tree_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The staleness check can fail: a hand edit, a missing and an extra file are each named.
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    monkeypatch.setattr(renderer, "MANIFESTS", copy)
    assert renderer.stale() == []
    dep = copy / "overlays" / "dev" / "deployment.yaml"
    dep.write_text(dep.read_text().replace("replicas: 1", "replicas: 2"))
    (copy / "overlays" / "prod" / "ingress.yaml").unlink()
    (copy / "overlays" / "prod" / "patch.yaml").write_text("{}\n")
    assert renderer.stale() == [
        "manifests/overlays/dev/deployment.yaml",
        "manifests/overlays/prod/ingress.yaml",
        "manifests/overlays/prod/patch.yaml",
    ]
    renderer.write()
    assert renderer.stale() == []


@needs_kubectl
@pytest.mark.parametrize("target", ALL_TARGETS)
def test_kustomize_builds_the_charts_objects(target: str) -> None:
    """`kubectl apply -k manifests/<target>` applies exactly what `helm install` would, in the
    tree's namespace, labelled as managed by kustomize."""
    profile = renderer.PROFILES[target]
    expected = helm_render(profile.namespace, tuple(profile.values_files), tuple(profile.sets))
    for o in expected:
        o["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "kustomize"
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(render(target), key=key) == sorted(expected, key=key)


def test_kubernetes_validate_works_offline_for_the_target_version() -> None:
    # A known-good and a known-bad object: proves the bundled schemas are used (no network).
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    assert kubernetes_validate.validate(good, K8S_VERSION, strict=True) == K8S_VERSION
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**good, "dat": {}}, K8S_VERSION, strict=True)


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_renders_and_every_object_validates(target: str) -> None:
    objs = render(target)
    assert objs, f"{target} rendered nothing"
    problems = []
    for obj in objs:
        ident = f"{obj['kind']}/{obj['metadata']['name']}"
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_RESOURCES:
            problems += [f"{ident}: {p}" for p in crd_problems(obj)]
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{ident}: not a core kind and no CR check: {e.message}")
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{ident}: {'/'.join(map(str, e.path))}: {e.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_names_are_unique_and_namespaced(target: str) -> None:
    objs = render(target)
    ids = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids))
    expected = OVERLAYS.get(target.removeprefix("overlays/"), BASE_NAMESPACE)
    for o in objs:
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"].get("namespace") == expected, o["metadata"]["name"]
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kfp-gitops-trigger"


def _pod_refs(pod: dict[str, Any]) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {
        "ConfigMap": set(),
        "Secret": set(),
        "PersistentVolumeClaim": set(),
    }
    for v in pod.get("volumes", []):
        if "configMap" in v:
            refs["ConfigMap"].add(v["configMap"]["name"])
        if "secret" in v:
            refs["Secret"].add(v["secret"]["secretName"])
        if "persistentVolumeClaim" in v:
            refs["PersistentVolumeClaim"].add(v["persistentVolumeClaim"]["claimName"])
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for e in c.get("env", []):
            src = e.get("valueFrom", {})
            if "secretKeyRef" in src:
                refs["Secret"].add(src["secretKeyRef"]["name"])
            if "configMapKeyRef" in src:
                refs["ConfigMap"].add(src["configMapKeyRef"]["name"])
        for e in c.get("envFrom", []):
            if "configMapRef" in e:
                refs["ConfigMap"].add(e["configMapRef"]["name"])
            if "secretRef" in e:
                refs["Secret"].add(e["secretRef"]["name"])
    return refs


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_references_resolve(name: str) -> None:
    objs = render(f"overlays/{name}")
    have = {(o["kind"], o["metadata"]["name"]) for o in objs}
    missing = []
    for w in workloads(objs):
        pod = w["spec"]["template"]["spec"]
        for kind, names in _pod_refs(pod).items():
            for n in names:
                if (kind, n) not in have and not (kind == "Secret" and n in EXTERNAL_SECRETS[name]):
                    missing.append(f"{w['metadata']['name']} -> {kind}/{n}")
        sa = pod.get("serviceAccountName")
        if sa:
            assert ("ServiceAccount", sa) in have
    # The AlertmanagerConfig's credentials live in the service's Secret.
    amc = one(objs, "AlertmanagerConfig", SERVICE_NAME)
    creds = amc["spec"]["receivers"][0]["webhookConfigs"][0]["httpConfig"]["authorization"]
    assert creds["credentials"]["name"] == SECRET_NAME
    assert creds["credentials"]["key"] == "alertmanager-token"
    for rb in find(objs, "RoleBinding"):
        assert ("Role", rb["roleRef"]["name"]) in have
        for s in rb["subjects"]:
            assert ("ServiceAccount", s["name"]) in have
    for ing in find(objs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert ("Service", p["backend"]["service"]["name"]) in have
    for route in find(objs, "Route"):
        assert ("Service", route["spec"]["to"]["name"]) in have
    for isvc in find(objs, "InferenceService"):
        runtime = isvc["spec"]["predictor"]["model"].get("runtime")
        if runtime:
            assert ("ServingRuntime", runtime) in have
    assert not missing, missing
    # A Secret the overlay generates must hold every key the service's env names and its
    # volume lists.
    for secret in find(objs, "Secret", SECRET_NAME):
        keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
        dep = one(objs, "Deployment", SERVICE_NAME)
        wanted = {
            Path(e["value"]).name
            for n, e in env_of(container(dep, "trigger-service")).items()
            if n.endswith(SECRET_FILE_SUFFIXES) and "value" in e
        }
        (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v]
        wanted |= {i["key"] for i in vol["secret"].get("items", [])}
        assert wanted <= keys, f"Secret lacks {sorted(wanted - keys)}"


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_selectors_select_the_service_pods(name: str) -> None:
    objs = render(f"overlays/{name}")
    dep = one(objs, "Deployment", SERVICE_NAME)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(dep["spec"]["selector"]["matchLabels"], pod_labels)
    svc = one(objs, "Service", SERVICE_NAME)
    assert _labels_match(svc["spec"]["selector"], pod_labels)
    assert _labels_match(
        one(objs, "PodDisruptionBudget", SERVICE_NAME)["spec"]["selector"]["matchLabels"],
        pod_labels,
    )
    assert _labels_match(
        one(objs, "NetworkPolicy", SERVICE_NAME)["spec"]["podSelector"]["matchLabels"], pod_labels
    )
    sm = one(objs, "ServiceMonitor", SERVICE_NAME)
    assert _labels_match(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["http"] and "http" in port_names
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    for other in find(objs, "Service"):
        if other["metadata"]["name"] == SERVICE_NAME:
            continue
        selected = [
            d
            for d in find(objs, "Deployment")
            if _labels_match(other["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert selected, f"Service {other['metadata']['name']} selects no pods"


def _check_container_hardening(where: str, c: dict[str, Any]) -> list[str]:
    sc = c.get("securityContext", {})
    errs = []
    if sc.get("allowPrivilegeEscalation") is not False:
        errs.append(f"{where}: allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        errs.append(f"{where}: readOnlyRootFilesystem must be true")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        errs.append(f"{where}: capabilities.drop must be [ALL]")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errs.append(f"{where}: seccompProfile RuntimeDefault")
    res = c.get("resources", {})
    if not {"cpu", "memory"} <= set(res.get("requests", {})):
        errs.append(f"{where}: cpu and memory requests")
    if "memory" not in res.get("limits", {}):
        errs.append(f"{where}: a memory limit")
    if c.get("image", "").endswith(":latest") or ":" not in c.get("image", ""):
        errs.append(f"{where}: image must carry a pinned tag, got {c.get('image')}")
    return errs


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_workloads_are_hardened(name: str) -> None:
    objs = render(f"overlays/{name}")
    errs = []
    for w in workloads(objs):
        pod = w["spec"]["template"]["spec"]
        where = f"{w['kind']}/{w['metadata']['name']}"
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            errs.append(f"{where}: pod runAsNonRoot")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            errs.append(f"{where}: pod seccompProfile RuntimeDefault")
        for c in pod["containers"]:
            errs += _check_container_hardening(f"{where}/{c['name']}", c)
    for sr in find(objs, "ServingRuntime"):
        for c in sr["spec"]["containers"]:
            errs += _check_container_hardening(f"ServingRuntime/{sr['metadata']['name']}", c)
    assert not errs, "\n".join(errs)


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_trigger_service_deployment_shape(name: str) -> None:
    objs = render(f"overlays/{name}")
    dep = one(objs, "Deployment", SERVICE_NAME)
    pod = dep["spec"]["template"]["spec"]
    c = container(dep, "trigger-service")
    env = env_of(c)
    assert [p["containerPort"] for p in c["ports"] if p["name"] == "http"] == [8080]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert env["TRIGGER_HOST"]["value"] == "0.0.0.0"
    assert env["TRIGGER_BACKEND"]["value"] == "kfp"

    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    def volume_for(path: str) -> tuple[str, dict[str, Any]]:
        best = max(
            (m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")), key=len
        )
        return best, volumes[mounts[best]["name"]]

    # Writable: the git cache and (with SQLite) the database sit on a writable volume.
    writable = [env["TRIGGER_GIT_CACHE_DIR"]["value"], c["workingDir"], "/tmp"]
    db = env["TRIGGER_DATABASE_URL"]
    if "value" in db:
        assert db["value"].startswith("sqlite:////")
        writable.append(db["value"].removeprefix("sqlite:///"))
        assert dep["spec"]["strategy"]["type"] == "Recreate"
        assert dep["spec"]["replicas"] == 1
        claim = volume_for(db["value"].removeprefix("sqlite:///"))[1]["persistentVolumeClaim"][
            "claimName"
        ]
        pvc = one(objs, "PersistentVolumeClaim", claim)
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    else:
        assert db["valueFrom"]["secretKeyRef"]["key"] == "dsn"
        assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
        assert one(objs, "PodDisruptionBudget", SERVICE_NAME)["spec"].get("minAvailable") == 1
    for path in writable:
        mount, vol = volume_for(path)
        assert not mounts[mount].get("readOnly"), path
        assert "emptyDir" in vol or "persistentVolumeClaim" in vol, path

    # Rules from the ConfigMap, secrets from the Secret as files, read-only.
    rules_mount, rules_vol = volume_for(env["TRIGGER_RULES_PATH"]["value"])
    assert "configMap" in rules_vol and mounts[rules_mount]["readOnly"]
    cm = one(objs, "ConfigMap", rules_vol["configMap"]["name"])
    assert Path(env["TRIGGER_RULES_PATH"]["value"]).name in cm["data"]
    yaml.safe_load(cm["data"]["rules.yaml"])
    for n, e in env.items():
        if n.endswith(SECRET_FILE_SUFFIXES):
            m, vol = volume_for(e["value"])
            assert vol.get("secret", {}).get("secretName") == SECRET_NAME, n
            assert mounts[m]["readOnly"]
    assert_secret_files_are_volume_items(dep)

    # The KFP token: Kubeflow checks a projected token for its audience; the DSPA's proxy
    # (OpenShift AI) the pod's own token, with the service CA for its certificate.
    token_path = env["TRIGGER_KFP_TOKEN_PATH"]["value"]
    if name == "openshift":
        assert token_path == f"{SA_TOKEN_DIR}/token"
        assert env["TRIGGER_KFP_CA_FILE"]["value"] == f"{SA_TOKEN_DIR}/service-ca.crt"
        assert pod["automountServiceAccountToken"] is True
        assert not any("projected" in v for v in volumes.values()), "an unused projected token"
        assert not any(m.startswith(SA_TOKEN_DIR) for m in mounts), "the kubelet mounts it"
    else:
        m, vol = volume_for(token_path)
        (source,) = vol["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
        assert Path(m, source["serviceAccountToken"]["path"]) == Path(token_path)
        assert mounts[m]["readOnly"]

    # The models PVC, read-only at the models root (runs are linked to what they published).
    m, vol = volume_for(env["TRIGGER_MODELS_ROOT"]["value"])
    assert m == env["TRIGGER_MODELS_ROOT"]["value"] and mounts[m]["readOnly"] is True
    assert vol["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert one(objs, "PersistentVolumeClaim", "models")["spec"]["accessModes"] == [
        "ReadWriteMany"
    ], "the pipeline's publish step and the service both mount it"


def assert_secret_files_are_volume_items(dep: dict[str, Any]) -> None:
    """Every TRIGGER_*_FILE names an item of the Secret volume (so a key missing from the
    Secret stops the pod at volume set-up, naming it), and every item has its setting."""
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]  # the service's, or the worker's
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == SECRETS_DIR]
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    items = vol["secret"].get("items", [])
    assert all(i["key"] == i["path"] for i in items), items
    files = {
        e["value"]
        for n, e in env_of(c).items()
        if n.endswith(SECRET_FILE_SUFFIXES) and "value" in e
    }
    assert files == {f"{SECRETS_DIR}/{i['path']}" for i in items}


COMPILE_ROLE_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_rbac_is_least_privilege(name: str) -> None:
    objs = render(f"overlays/{name}")
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    # The compile Jobs' Role (rbac.compileJobs): exactly the rights docs/security.md lists.
    compile_roles = [r for r in find(objs, "Role") if r["metadata"]["name"].endswith("-compile")]
    for role in compile_roles:
        assert role["rules"] == COMPILE_ROLE_RULES, role["rules"]
    rules = [r for role in find(objs, "Role") if role not in compile_roles for r in role["rules"]]
    allowed = {
        "pipelines.kubeflow.org": {"get", "list", "create", "terminate"},
        "serving.kserve.io": {"get", "patch"},
        # POST -> create, GET -> get (kube-rbac-proxy); the service never deletes.
        "datasciencepipelinesapplications.opendatahub.io": {"get", "create"},
        # Older Data Science Pipelines (oauth-proxy): get on the route ds-pipeline-<dspa>.
        "route.openshift.io": {"get"},
    }
    for r in rules:
        assert "*" not in r["verbs"] and "*" not in r["resources"] and "*" not in r["apiGroups"]
        assert "delete" not in r["verbs"] and "deletecollection" not in r["verbs"], r
        for group in r["apiGroups"]:
            assert group in allowed, f"unexpected API group {group!r}"
            assert set(r["verbs"]) <= allowed[group], r
        if "serving.kserve.io" in r["apiGroups"]:
            assert r["resources"] == ["inferenceservices"] and sorted(r["verbs"]) == [
                "get",
                "patch",
            ]
    # Kubeflow's edit role names pipelines/versions beside pipelines: a version upload may be
    # checked against either, so both are granted.
    kfp = {
        res: set(r["verbs"])
        for r in rules
        if r["apiGroups"] == ["pipelines.kubeflow.org"]
        for res in r["resources"]
    }
    for res in ("pipelines", "pipelines/versions", "experiments"):
        assert kfp.get(res) == {"get", "list", "create"}, res
    assert kfp.get("runs") == {"get", "list", "create", "terminate"}
    for r in rules:  # Data Science Pipelines: only the DSPA the service talks to.
        if r["apiGroups"][0] in (
            "datasciencepipelinesapplications.opendatahub.io",
            "route.openshift.io",
        ):
            assert r.get("resourceNames"), r
    for sa in find(objs, "ServiceAccount"):
        assert sa["metadata"]["name"] == SERVICE_NAME


def _doc_objects(path: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects of a markdown file's ```yaml blocks (indented ones too)."""
    blocks = re.findall(r"^( *)```yaml\n(.*?)^\1```", path.read_text(), flags=re.M | re.S)
    docs = []
    for indent, body in blocks:
        text = "\n".join(line.removeprefix(indent) for line in body.splitlines())
        docs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and "kind" in d]
    return docs


def _rules_without(role: dict[str, Any], group: str) -> list[dict[str, Any]]:
    return [r for r in role["rules"] if group not in r["apiGroups"]]


def test_roles_are_the_ones_docs_kubeflow_md_shows() -> None:
    """docs/kubeflow.md tells people which Roles to create by hand; the manifests grant the
    same (the KServe roll-out rule aside)."""
    docs = {d["metadata"]["name"]: d for d in _doc_objects(KUBEFLOW_DOC) if d["kind"] == "Role"}
    base = one(render("base"), "Role", SERVICE_NAME)
    assert base["rules"] == docs["trigger-service-kfp"]["rules"]
    for name in OVERLAYS:
        objs = render(f"overlays/{name}")
        role = one(objs, "Role", SERVICE_NAME)
        assert _rules_without(role, "serving.kserve.io") == base["rules"], name
        for dspa in find(objs, "Role", "trigger-service-dspa"):
            assert dspa["rules"] == docs["trigger-service-dspa"]["rules"], name
    assert find(render("overlays/openshift"), "Role", "trigger-service-dspa")


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_network_policy(name: str) -> None:
    objs = render(f"overlays/{name}")
    np = one(objs, "NetworkPolicy", SERVICE_NAME)
    assert sorted(np["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    ingress_ports = [p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]]
    # The webhooks' port, and the workers' metrics port when they run apart.
    assert set(ingress_ports) == (
        {"http", "metrics"} if find(objs, "Service", f"{SERVICE_NAME}-worker") else {"http"}
    )
    sources = {
        peer["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
        for rule in np["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    }
    assert {"monitoring", "minio"} <= sources
    egress_ports = {p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])}
    # DNS: 53, or on OpenShift 5353 (its resolver pods' port; test_chart_render checks labels).
    assert 443 in egress_ports and egress_ports & {53, 5353}
    # The KFP API: its pods, on the port of TRIGGER_KFP_HOST (8888 for Kubeflow's ml-pipeline,
    # 8443 for the DSPA's proxy on OpenShift AI), and nothing else on that rule.
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    problems = kfp_egress_problems(
        np, env["TRIGGER_KFP_HOST"]["value"], np["metadata"]["namespace"]
    )
    assert not problems, problems
    if (
        "value"
        not in env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))[
            "TRIGGER_DATABASE_URL"
        ]
    ):
        assert 5432 in egress_ports


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_webhook_urls_name_the_rendered_service(name: str) -> None:
    objs = render(f"overlays/{name}")
    svc = one(objs, "Service", SERVICE_NAME)
    port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    base = f"http://{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc:{port}"
    amc = one(objs, "AlertmanagerConfig", SERVICE_NAME)
    hook = amc["spec"]["receivers"][0]["webhookConfigs"][0]
    assert hook["url"] == f"{base}/webhooks/alertmanager"
    assert hook["sendResolved"] is True
    assert hook["httpConfig"]["authorization"]["type"] == "Bearer"
    route = amc["spec"]["route"]
    assert route["receiver"] == amc["spec"]["receivers"][0]["name"]
    assert {"name": "alertname", "value": "ModelDrift"} in [
        {k: m[k] for k in ("name", "value")} for m in route["matchers"]
    ]
    job_env = env_of(
        one(objs, "Job", "trigger-service-minio-notification")["spec"]["template"]["spec"][
            "containers"
        ][0]
    )
    assert job_env["WEBHOOK_ENDPOINT"]["value"] == f"{base}/webhooks/storage"


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_minio_job_configures_the_notification(name: str) -> None:
    objs = render(f"overlays/{name}")
    job = one(objs, "Job", "trigger-service-minio-notification")
    c = job["spec"]["template"]["spec"]["containers"][0]
    script = c["args"][0]
    # The commands: notify_webhook:trigger with the auth token, a restart, then
    # `mc event add ALIAS/songs arn:minio:sqs::trigger:webhook --event put --prefix songs/
    # --suffix .csv`.
    env = {k: v["value"] for k, v in env_of(c).items() if "value" in v}
    expanded = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), script).replace(
        '"', ""
    )
    assert "mc admin config set target notify_webhook:trigger \\\n" in expanded
    assert "auth_token=$(cat /etc/trigger/secrets/storage-token)" in expanded
    assert "mc admin service restart target" in expanded
    # MinIO's persistent event store: undelivered events are kept and retried, not dropped.
    assert "queue_dir=/opt/minio/events/trigger queue_limit=100000" in expanded
    assert re.search(
        r"mc event add target/songs arn:minio:sqs::trigger:webhook\s*\\\s*"
        r"--event put --prefix songs/ --suffix \.csv",
        expanded,
    ), expanded
    vol = job["spec"]["template"]["spec"]["volumes"]
    assert {
        "secretName": SECRET_NAME,
        "items": [{"key": "storage-token", "path": "storage-token"}],
    } in [v.get("secret") for v in vol]


def _rules(objs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    pr = one(objs, "PrometheusRule", SERVICE_NAME)
    return {r["alert"]: r for g in pr["spec"]["groups"] for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_prometheus_rules(name: str) -> None:
    alerts = _rules(render(f"overlays/{name}"))
    drift = alerts["ModelDrift"]
    assert drift["labels"] == {"model": "songs", "severity": "warning"}
    assert drift["for"] == "15m"
    assert 'model_drift_score{model="songs"}' in drift["expr"] and "> 0.3" in drift["expr"]
    # The drift alert must keep the namespace label: the operator adds a namespace matcher to
    # the AlertmanagerConfig route.
    assert "by (namespace, model)" in drift["expr"]
    exprs = " ".join(r["expr"] for r in alerts.values())
    assert "trigger_dead_letters_total" in exprs
    assert "trigger_submit_failures_total" in exprs
    # Beside the drift rule: a sender's max_alerts cut alerts (a drift alert may be among them).
    assert "trigger_alerts_truncated_total" in alerts["TriggerAlertsTruncated"]["expr"]
    used = set(re.findall(r"\btrigger_[a-z_]+", exprs))
    assert used <= SERVICE_METRICS, f"unknown service metrics: {used - SERVICE_METRICS}"


PROMTOOL = shutil.which("promtool")


# A promtool unit test: the drift alert fires after 15 minutes above 0.3, with the labels the
# AlertmanagerConfig route and the service's drift trigger match on.
PROMTOOL_TEST = """
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'model_drift_score{model="songs",namespace="songs"}'
        values: "0.1 0.5x30"
      - series: 'trigger_dead_letters_total{namespace="songs",job="trigger-service"}'
        values: "0 0 1 1 1"
      - series: 'trigger_alerts_truncated_total{namespace="songs",source="grafana"}'
        values: "0 0 0 2 2"
    alert_rule_test:
      - eval_time: 10m
        alertname: ModelDrift
        exp_alerts: []
      - eval_time: 20m
        alertname: ModelDrift
        exp_alerts:
          - exp_labels: {alertname: ModelDrift, model: songs, namespace: songs, severity: warning}
            exp_annotations:
              summary: Model songs drifted (score 0.50)
              description: >-
                The drift score of the served model songs in songs has been above 0.3 for 15m.
                Alertmanager sends this alert to the trigger service, which decides whether to
                retrain.
      - eval_time: 2m
        alertname: TriggerAlertsTruncated
        exp_alerts: []
      - eval_time: 4m
        alertname: TriggerAlertsTruncated
        exp_alerts:
          - exp_labels:
              alertname: TriggerAlertsTruncated
              namespace: songs
              source: grafana
              severity: warning
            exp_annotations:
              summary: grafana cut alerts from its notifications (2 in 15m)
              description: >-
                Alerts beyond the sender's max_alerts reached nobody, and a drift alert may be
                among them. Raise max_alerts or group by model (docs/senders.md); the service
                log names the group.
      - eval_time: 4m
        alertname: TriggerDeadLetters
        exp_alerts:
          - exp_labels:
              alertname: TriggerDeadLetters
              namespace: songs
              job: trigger-service
              severity: warning
            exp_annotations:
              summary: Events were dead-lettered (1 in 15m)
              description: >-
                An event failed permanently or ran out of retries. See GET /events for the
                reason.
"""


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    pr = one(render("overlays/prod"), "PrometheusRule", SERVICE_NAME)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": pr["spec"]["groups"]}))
    check = [PROMTOOL, "check", "rules", str(rules)]
    proc = subprocess.run(check, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({"rule_files": [str(rules)], **yaml.safe_load(PROMTOOL_TEST)}))
    run = [PROMTOOL, "test", "rules", str(test)]
    proc = subprocess.run(run, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The backlog alert with two service replicas and two workers, each reporting the whole
# inbox's depth: 60 pending events (four series of 60, which a sum would read as 240) stay
# below the threshold of 100; 150 pending fire once, with the value 150, and the TriggerWorkerDown
# alert stays quiet while the workers are scraped.
BACKLOG_TEST = """
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'trigger_inbox_depth{status="pending",namespace="songs",pod="a"}'
        values: "60x20 150x30"
      - series: 'trigger_inbox_depth{status="pending",namespace="songs",pod="b"}'
        values: "60x20 150x30"
      - series: 'trigger_inbox_depth{status="pending",namespace="songs",pod="c"}'
        values: "60x20 150x30"
      - series: 'trigger_inbox_depth{status="pending",namespace="songs",pod="d"}'
        values: "60x20 150x30"
      - series: 'up{job="trigger-service-worker",namespace="songs",pod="c"}'
        values: "1x50"
    alert_rule_test:
      - eval_time: 19m
        alertname: TriggerInboxBacklog
        exp_alerts: []
      - eval_time: 30m
        alertname: TriggerInboxBacklog
        exp_alerts: []
      - eval_time: 37m
        alertname: TriggerInboxBacklog
        exp_alerts:
          - exp_labels: {alertname: TriggerInboxBacklog, namespace: songs, severity: warning}
            exp_annotations:
              summary: 150 events are waiting in the inbox
              description: The worker is not keeping up or is stuck.
      - eval_time: 37m
        alertname: TriggerWorkerDown
        exp_alerts: []
"""


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)
def test_promtool_backlog_alert_with_two_replicas(tmp_path: Path) -> None:
    pr = one(render("overlays/prod"), "PrometheusRule", SERVICE_NAME)
    assert one(render("overlays/prod"), "Deployment", SERVICE_NAME)["spec"]["replicas"] == 2
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": pr["spec"]["groups"]}))
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({"rule_files": [str(rules)], **yaml.safe_load(BACKLOG_TEST)}))
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", str(test)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_compile_pods_get_no_network(name: str) -> None:
    """A compile Job runs a pushed commit's code; it had every egress (the KFP API, this service,
    the cloud's metadata endpoint). Its NetworkPolicy selects the labels the service puts on the
    Job's pods (versions/k8s_compile.py) and allows nothing either way."""
    objs = render(f"overlays/{name}")
    if not find(objs, "Role", f"{SERVICE_NAME}-compile"):
        assert not find(objs, "NetworkPolicy", f"{SERVICE_NAME}-compile")
        return  # no compile Jobs without backend kfp
    from trigger_service.rules import PipelineSpec
    from trigger_service.versions.k8s_compile import JobCompiler

    pipeline = PipelineSpec.model_validate(
        {
            "name": "songs",
            "source": {
                "repository": "https://git.example/x.git",
                "module": "pipeline",
                "image_template": "registry.example/songs:{commit}",
            },
        }
    )
    compiler = JobCompiler(namespace="kfp-trigger", cpu="1", memory_bytes=2**30, timeout=60)
    job = compiler.job_manifest(pipeline, "a" * 40, "registry.example/songs:x", "0" * 32)
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    np = one(objs, "NetworkPolicy", f"{SERVICE_NAME}-compile")
    assert _labels_match(np["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert sorted(np["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not np["spec"].get("ingress") and not np["spec"].get("egress")
    service_np = one(objs, "NetworkPolicy", SERVICE_NAME)
    assert not _labels_match(service_np["spec"]["podSelector"]["matchLabels"], pod_labels)
