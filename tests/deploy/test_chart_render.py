"""The chart, linted and rendered by the real Helm engine (helm-python-sdk embeds Helm v4's Go
SDK; no helm binary), with values passed the way users pass them (`-f` files merged into the
chart's defaults, `--set`), for every profile: defaults, dev, prod, openshift and an external
PostgreSQL. Rendered objects validate against the Kubernetes schemas and the operators' CRDs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    DOCS,
    K8S_VERSION,
    PROFILES,
    PROFILES_DIR,
    SECRET_NAME,
    SERVICE_NAME,
    container,
    env_of,
    find,
    helm_render,
    kfp_egress_problems,
    one,
    rendered,
    renderer,
    workloads,
)
from tests.deploy.crd_schemas import CUSTOM_RESOURCES, crd_problems
from tests.deploy.test_agreement import _service_models_root
from tests.deploy.test_manifests import (
    SA_TOKEN_DIR,
    _check_container_hardening,
    assert_secret_files_are_volume_items,
)

WORKER_NAME = f"{SERVICE_NAME}-worker"
FIXED_IDS = ("runAsUser", "runAsGroup", "fsGroup")


def test_helm_lint_strict_passes_for_every_profile() -> None:
    for name, (files, sets, namespace) in PROFILES.items():
        values = renderer.user_values([PROFILES_DIR / f for f in files], sets)
        report = helm.lint(CHART, values, strict=True, namespace=namespace)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, (name, problems)


def test_helm_lint_strict_finds_a_broken_template(tmp_path: Path) -> None:
    # The check itself can fail: a template calling an undefined function is an error.
    with helm.Chart.load(CHART) as chart:
        chart.save_dir(tmp_path)
    broken = tmp_path / CHART.name / "templates" / "service.yaml"
    broken.write_text(broken.read_text() + "\n{{ no_such_function }}\n")
    report = helm.lint(tmp_path / CHART.name, strict=True)
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


def _validate(obj: dict[str, Any]) -> list[str]:
    ident = f"{obj['kind']}/{obj['metadata']['name']}"
    if (obj["apiVersion"], obj["kind"]) in CUSTOM_RESOURCES:
        return [f"{ident}: {p}" for p in crd_problems(obj)]
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{ident}: not a core kind and no CRD check: {e.message}"]
    except kubernetes_validate.ValidationError as e:
        return [f"{ident}: {'/'.join(map(str, e.path))}: {e.message}"]
    return []


def test_every_profile_renders_valid_objects(profile: str) -> None:
    objs = rendered(profile)
    assert objs
    problems = [p for obj in objs for p in _validate(obj)]
    assert not problems, "\n".join(problems)
    ids = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids)), "duplicate objects"


def test_every_profile_hardens_its_workloads(profile: str) -> None:
    errs = []
    for w in workloads(rendered(profile)):
        pod = w["spec"]["template"]["spec"]
        where = f"{w['kind']}/{w['metadata']['name']}"
        if pod["securityContext"].get("runAsNonRoot") is not True:
            errs.append(f"{where}: pod runAsNonRoot")
        errs += [e for c in pod["containers"] for e in _check_container_hardening(where, c)]
    assert not errs, errs


# --- OpenShift: no fixed ids anywhere ---------------------------------------------------------


def _fixed_ids(objs: tuple[dict[str, Any], ...]) -> list[str]:
    """Every runAsUser/runAsGroup/fsGroup in a pod or container securityContext (workloads,
    ServingRuntimes), as 'Kind/name[/container]: field'."""
    found = []
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            pod = o["spec"]["template"]["spec"]
        elif o["kind"] == "ServingRuntime":
            pod = o["spec"]
        else:
            continue
        where = f"{o['kind']}/{o['metadata']['name']}"
        found += [f"{where}: {k}" for k in FIXED_IDS if k in pod.get("securityContext", {})]
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            sc = c.get("securityContext", {})
            found += [f"{where}/{c['name']}: {k}" for k in FIXED_IDS if k in sc]
    return found


def test_openshift_profile_renders_no_fixed_ids() -> None:
    objs = rendered("openshift")
    assert workloads(objs), "nothing to check"
    assert not _fixed_ids(objs)


def test_openshift_switch_removes_the_ids_every_pod_would_have() -> None:
    """The same objects without the switch do carry fixed ids (so the check above can fail),
    and with it on every pod of every kind the chart can render loses them."""
    everything = (
        "modelServer.kind=ovms",
        "workerDeployment.enabled=true",
        "database.existingSecret=db",
    )
    without = helm_render("songs-ai", (), everything)
    assert {f.split(":")[0] for f in _fixed_ids(without)} >= {
        f"Deployment/{SERVICE_NAME}",
        f"Deployment/{WORKER_NAME}",
        "Deployment/ovms-songs",
        f"Job/{SERVICE_NAME}-minio-notification",
    }
    assert not _fixed_ids(helm_render("songs-ai", (), (*everything, "openshift=true")))


def test_a_values_map_merges_into_the_defaults_so_the_switch_is_needed(tmp_path: Path) -> None:
    """Helm merges a user's podSecurityContext into the chart's: leaving the ids out of it
    keeps them (the trap the old docs fell into)."""
    f = tmp_path / "my-values.yaml"
    f.write_text(yaml.safe_dump({"podSecurityContext": {"runAsNonRoot": True}}))
    dep = one(helm_render("songs-ai", (f,)), "Deployment", SERVICE_NAME)
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def _doc_values_blocks(path: Path) -> dict[str, str]:
    """```yaml blocks of a markdown file whose first line is `# <name>.yaml`, by name."""
    blocks = re.findall(r"^```yaml\n# (\S+\.yaml)\n(.*?)^```", path.read_text(), re.M | re.S)
    return {name: body for name, body in blocks}


def test_the_docs_openshift_values_render_no_fixed_ids(tmp_path: Path) -> None:
    blocks = _doc_values_blocks(DOCS)
    assert "my-values.yaml" in blocks, "docs/deployment.md lost its OpenShift values example"
    f = tmp_path / "my-values.yaml"
    f.write_text(blocks["my-values.yaml"])
    objs = helm_render("my-project", ("openshift.yaml", f))
    assert workloads(objs) and not _fixed_ids(objs)
    assert yaml.safe_load(blocks["my-values.yaml"]).get("openshift") is True
    # and the rest of it fits together: the service may reach the DSPA it names
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    np = one(objs, "NetworkPolicy", SERVICE_NAME)
    assert not kfp_egress_problems(np, env["TRIGGER_KFP_HOST"]["value"], "my-project")


# --- values passed as users pass them ---------------------------------------------------------


def test_later_values_files_and_set_win(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("settings: {logLevel: DEBUG, kfp: {pollSeconds: 30}}\nreplicaCount: 1\n")
    b.write_text("settings: {kfp: {pollSeconds: 5}}\n")
    objs = helm_render("songs", (a, b), ("settings.logLevel=WARNING",))
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert env["TRIGGER_KFP_POLL_SECONDS"]["value"] == "5"  # b over a
    assert env["TRIGGER_LOG_LEVEL"]["value"] == "WARNING"  # --set over both
    assert env["TRIGGER_KFP_HOST"]["value"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


def test_null_deletes_a_default_key(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("podSecurityContext: {runAsUser: null, runAsGroup: null}\n")
    pod = one(helm_render("songs", (f,)), "Deployment", SERVICE_NAME)["spec"]["template"]["spec"]
    assert "runAsUser" not in pod["securityContext"] and "runAsGroup" not in pod["securityContext"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("replicaCount=2",), "database"),
        (("workerDeployment.enabled=true",), "PostgreSQL"),
        (("settings.backend=kubeflow",), "backend"),
        (("settings.worker.port=0",), "port"),
    ],
)
def test_bad_values_are_refused_naming_the_field(sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        helm_render("songs", (), sets)


# --- what each profile must contain ----------------------------------------------------------


def test_default_values_generate_the_in_cluster_tokens() -> None:
    objs = helm_render("kfp-trigger")
    secret = one(objs, "Secret", SECRET_NAME)
    assert sorted(secret["data"]) == ["alertmanager-token", "manual-token", "storage-token"]
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert {n for n in env if n.endswith("_TOKEN_FILE") or n.endswith("_SECRET_FILE")} == {
        "TRIGGER_STORAGE_TOKEN_FILE",
        "TRIGGER_ALERTMANAGER_TOKEN_FILE",
        "TRIGGER_MANUAL_TOKEN_FILE",
    }


def test_dev_sends_no_placeholder_git_token() -> None:
    """The dev Secret's tokens are in-cluster webhook tokens; no git-token, which the service
    would send to the rules' https repository."""
    objs = rendered("dev")
    assert "git-token" not in one(objs, "Secret", SECRET_NAME)["data"]
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert "TRIGGER_GIT_TOKEN_FILE" not in env


def test_external_postgres_profile() -> None:
    objs = rendered("external-postgres")
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


def test_secret_files_are_volume_items(profile: str) -> None:
    """Each TRIGGER_*_FILE is an item of the Secret volume, and a Secret the chart makes holds
    every item's key: no setting names a file that is not there."""
    objs = rendered(profile)
    for dep in find(objs, "Deployment"):
        if dep["metadata"]["name"] not in (SERVICE_NAME, WORKER_NAME):
            continue
        assert_secret_files_are_volume_items(dep)
        (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v]
        keys = {i["key"] for i in vol["secret"]["items"]}
        for secret in find(objs, "Secret", SECRET_NAME):
            assert keys <= set(secret["data"]), sorted(keys - set(secret["data"]))


def test_models_pvc_is_mounted_read_only(profile: str) -> None:
    root, vol = _service_models_root(rendered(profile))
    assert root == "/models" and vol["persistentVolumeClaim"]["claimName"] == "models"


def test_kfp_token(profile: str) -> None:
    dep = one(rendered(profile), "Deployment", SERVICE_NAME)
    pod = dep["spec"]["template"]["spec"]
    env = env_of(container(dep, "trigger-service"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert pod["automountServiceAccountToken"] is True
    if profile == "openshift":  # the pod's own token, for the DSPA's proxy
        assert env["TRIGGER_KFP_TOKEN_PATH"]["value"] == f"{SA_TOKEN_DIR}/token"
        assert "kfp-token" not in volumes
    else:
        assert env["TRIGGER_KFP_TOKEN_PATH"]["value"] == "/var/run/secrets/kubeflow/pipelines/token"
        (source,) = volumes["kfp-token"]["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"


@pytest.mark.parametrize("name", [p for p in sorted(PROFILES) if p != "external-postgres"])
def test_kfp_egress_follows_the_host(name: str) -> None:
    objs = rendered(name)
    np = one(objs, "NetworkPolicy", SERVICE_NAME)
    host = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    problems = kfp_egress_problems(np, host["TRIGGER_KFP_HOST"]["value"], PROFILES[name][2])
    assert not problems, problems


@pytest.mark.parametrize(
    ("host", "ports", "expected"),
    [
        ("http://ml-pipeline.kubeflow.svc.cluster.local:8888", None, [8888]),
        ("https://ml-pipeline.kubeflow.svc.cluster.local", None, [443]),
        ("http://ml-pipeline.kubeflow.svc.cluster.local", None, [80]),
        # The UI's Service maps 80 to its pods' 3000: the policy needs the pods' port.
        ("http://ml-pipeline-ui.kubeflow.svc.cluster.local", "{3000}", [3000]),
    ],
)
def test_kfp_egress_ports(host: str, ports: str | None, expected: list[int]) -> None:
    sets = (f"settings.kfp.host={host}",) + ((f"networkPolicy.kfp.ports={ports}",) if ports else ())
    objs = helm_render("songs", (), sets)
    np = one(objs, "NetworkPolicy", SERVICE_NAME)
    (rule,) = [
        r
        for r in np["spec"]["egress"]
        if any("kubernetes.io/metadata.name" in str(peer) for peer in r.get("to", []))
    ]
    assert rule["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}}
    ]
    assert [p["port"] for p in rule["ports"]] == expected


# --- rules reload and the split worker ----------------------------------------------------------


def test_rules_change_reloads_without_a_rollout(profile: str) -> None:
    """The service re-reads the mounted rules file when it changes (RulesHolder): the rules
    ConfigMap keeps one name (no hash suffix) and the pod template carries no checksum of it,
    so a rules change is not a restart; nothing mounts it with subPath (which never updates)."""
    objs = rendered(profile)
    for w in workloads(objs):
        annotations = w["spec"]["template"]["metadata"].get("annotations", {})
        assert not any("rules" in k for k in annotations), annotations
    dep = one(objs, "Deployment", SERVICE_NAME)
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "rules"]
    assert vol["configMap"]["name"] == f"{SERVICE_NAME}-rules"
    one(objs, "ConfigMap", f"{SERVICE_NAME}-rules")
    mounts = container(dep, "trigger-service")["volumeMounts"]
    assert not [m for m in mounts if m["name"] == "rules" and "subPath" in m]


def test_prod_runs_probed_and_scraped_workers() -> None:
    objs = rendered("prod")
    worker = one(objs, "Deployment", WORKER_NAME)
    c = container(worker, "worker")
    assert c["args"] == ["worker"]
    env = env_of(c)
    port = int(env["TRIGGER_WORKER_PORT"]["value"])
    assert [p["containerPort"] for p in c["ports"] if p["name"] == "metrics"] == [port]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # The same settings as the service (one env helper), PostgreSQL and no webhook Service.
    service_env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert {k: v for k, v in env.items() if k != "TRIGGER_WORKER_PORT"} == service_env
    assert "secretKeyRef" in env["TRIGGER_DATABASE_URL"]["valueFrom"]
    assert service_env["TRIGGER_WORKER_ENABLED"]["value"] == "false"
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    svc = one(objs, "Service", SERVICE_NAME)
    assert not all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    wsvc = one(objs, "Service", WORKER_NAME)
    assert all(pod_labels.get(k) == v for k, v in wsvc["spec"]["selector"].items())
    sm = one(objs, "ServiceMonitor", WORKER_NAME)
    assert sm["spec"]["selector"]["matchLabels"].items() <= wsvc["metadata"]["labels"].items()
    assert [(e["port"], e["path"]) for e in sm["spec"]["endpoints"]] == [("metrics", "/metrics")]
    assert [p["name"] for p in wsvc["spec"]["ports"]] == ["metrics"]
    pdb = one(objs, "PodDisruptionBudget", WORKER_NAME)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # Prometheus may reach the metrics port; the workers share the service's egress policy.
    np = one(objs, "NetworkPolicy", SERVICE_NAME)
    assert np["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert {"port": "metrics", "protocol": "TCP"} in np["spec"]["ingress"][0]["ports"]
    alerts = {
        r.get("alert"): r
        for g in one(objs, "PrometheusRule", SERVICE_NAME)["spec"]["groups"]
        for r in g["rules"]
    }
    assert alerts["TriggerWorkerDown"]["expr"] == f'absent(up{{job="{WORKER_NAME}"}} == 1)'


def test_compile_job_rights_only_when_rbac_compile_jobs_asks() -> None:
    """The Job compiler's rights (create/get/delete its Job, list pods, read their log, as
    trigger_service/versions/k8s_compile.py calls them) are granted by `rbac.compileJobs` alone,
    in a Role of their own; the KFP Role stays the one test_rbac_is_least_privilege checks."""
    compile_rules = [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    sets = ("settings.backend=kfp", "modelServer.kind=none")
    plain = helm_render("songs", (), sets)
    asked = helm_render("songs", (), (*sets, "rbac.compileJobs=true"))
    without = one(plain, "Role", SERVICE_NAME)["rules"]
    assert not [r for r in without if r in compile_rules]
    assert not find(plain, "Role", f"{SERVICE_NAME}-compile")
    # The KFP Role is untouched; the Job rights come in a Role (and binding) of their own.
    assert one(asked, "Role", SERVICE_NAME)["rules"] == without
    assert one(asked, "Role", f"{SERVICE_NAME}-compile")["rules"] == compile_rules
    assert one(asked, "RoleBinding", f"{SERVICE_NAME}-compile")["roleRef"]["name"] == (
        f"{SERVICE_NAME}-compile"
    )
    assert not find(asked, "ClusterRole")


def test_extra_env_reaches_the_service_container(tmp_path: Path) -> None:
    """settings.extraEnv is how the settings without a chart value (TRIGGER_MODEL_REGISTRY,
    TRIGGER_GITHUB_API_URL, ...) are set: each entry is one more env var of both Deployments
    (it once rendered indented under the previous entry: YAML the engine could not parse)."""
    values = tmp_path / "registry.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "database": {"dsn": "postgresql+psycopg://u:p@db:5432/t"},
                "workerDeployment": {"enabled": True},
                "settings": {
                    "extraEnv": [
                        {"name": "TRIGGER_MODEL_REGISTRY", "value": "mlflow"},
                        {"name": "TRIGGER_MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"},
                    ]
                },
            }
        )
    )
    objs = helm_render("songs", (values,))
    for name, c in ((SERVICE_NAME, "trigger-service"), (WORKER_NAME, "worker")):
        env = env_of(container(one(objs, "Deployment", name), c))
        assert env["TRIGGER_MODEL_REGISTRY"] == {
            "name": "TRIGGER_MODEL_REGISTRY",
            "value": "mlflow",
        }
        assert env["TRIGGER_MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"


OUTBOX_SECRET_KEYS = (
    "github-api-token",
    "gitlab-api-token",
    "gitea-api-token",
    "mlflow-tracking-token",
    "kubeflow-registry-token",
    "s3-access-key",
    "s3-secret-key",
)


@pytest.mark.parametrize("how", ["values", "existingSecret"])
def test_outbox_registry_and_s3_keys_are_secret_files_the_settings_read(how: str) -> None:
    """The forges' status tokens, the registry tokens and the reconcile loop's S3 keys go in
    the Secret like the webhook secrets: each becomes a TRIGGER_*_FILE that Settings reads."""
    from trigger_service.settings import Settings

    if how == "values":
        sets = tuple(f"secrets.values.{k}=v-{k}" for k in OUTBOX_SECRET_KEYS)
    else:
        sets = (
            "secrets.existingSecret=mine",
            "secrets.existingSecretKeys={" + ",".join(OUTBOX_SECRET_KEYS) + "}",
        )
    objs = helm_render("songs", (), sets)
    deployment = one(objs, "Deployment", SERVICE_NAME)
    env = env_of(container(deployment, "trigger-service"))
    for key in OUTBOX_SECRET_KEYS:
        name = f"TRIGGER_{key.upper().replace('-', '_')}_FILE"
        assert env[name]["value"] == f"/etc/trigger/secrets/{key}"
        assert name.removeprefix("TRIGGER_").lower() in Settings.model_fields, name
    assert_secret_files_are_volume_items(deployment)
    if how == "values":
        data = one(objs, "Secret", SECRET_NAME)["data"]
        assert set(OUTBOX_SECRET_KEYS) <= set(data)


@pytest.mark.parametrize("how", ["values", "existingSecret"])
def test_every_senders_secret_becomes_the_file_its_setting_reads(how: str) -> None:
    """The Secret and the env iterate over secrets.values (or existingSecretKeys): each sender
    the registry declares gets its key in the Secret and TRIGGER_<FIELD>_FILE pointing at it."""
    from trigger_service.sources import SOURCES

    keys = {name: s.secret_setting.replace("_", "-") for name, s in SOURCES.items()}
    if how == "values":
        sets = tuple(f"secrets.values.{k}=v-{k}" for k in keys.values())
    else:
        sets = (
            "secrets.existingSecret=mine",
            "secrets.existingSecretKeys={" + ",".join(keys.values()) + "}",
        )
    objs = helm_render("songs", (), sets)
    deployment = one(objs, "Deployment", SERVICE_NAME)
    env = env_of(container(deployment, "trigger-service"))
    data = one(objs, "Secret", SECRET_NAME)["data"] if how == "values" else {}
    for name, key in keys.items():
        variable = f"TRIGGER_{SOURCES[name].secret_setting.upper()}_FILE"
        assert env.get(variable, {}).get("value") == f"/etc/trigger/secrets/{key}", (
            f"{name}: the Deployment's {variable}"
        )
        assert how != "values" or key in data, f"{name}: the Secret lacks {key}"
    assert_secret_files_are_volume_items(deployment)


def _models_mounts(deployment: dict[str, Any]) -> tuple[Any, Any]:
    mount = next(
        m for m in container(deployment, "trigger-service")["volumeMounts"] if m["name"] == "models"
    )
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "models"
    )
    return mount.get("readOnly"), volume["persistentVolumeClaim"].get("readOnly")


def test_models_volume_read_write_only_when_asked_for_promotion() -> None:
    """`trigger-service models promote` renames version folders: 409 on a read-only mount.
    The chart mounts the models PVC read-only unless models.serviceReadWrite is set."""
    default = one(helm_render("songs"), "Deployment", SERVICE_NAME)
    assert _models_mounts(default) == (True, True)
    asked = one(
        helm_render("songs", (), ("models.serviceReadWrite=true",)), "Deployment", SERVICE_NAME
    )
    assert _models_mounts(asked) == (False, False)


@pytest.mark.parametrize(
    "endpoint",
    [
        "minio.minio.svc.cluster.local:9000",
        "http://minio.minio.svc.cluster.local:9000",  # the form the Secrets of the docs use
        "http://minio.minio.svc.cluster.local:9000/",
    ],
)
def test_network_policy_admits_the_s3_endpoint_for_the_reconcile_listing(endpoint: str) -> None:
    """Data triggers with reconcile_seconds list settings.s3Endpoint (host:port or a URL, as
    Settings takes it): its port is admitted, and without an endpoint no such rule is there."""

    def admitted_anywhere(objs: tuple[dict[str, Any], ...]) -> set[int]:
        policy = one(objs, "NetworkPolicy", SERVICE_NAME)
        return {p["port"] for r in policy["spec"]["egress"] if "to" not in r for p in r["ports"]}

    plain = admitted_anywhere(helm_render("songs"))
    assert 9000 not in plain
    with_s3 = admitted_anywhere(helm_render("songs", (), (f"settings.s3Endpoint={endpoint}",)))
    assert with_s3 == plain | {9000}


def test_profiles_whose_rules_compile_a_module_grant_the_compile_jobs() -> None:
    """The shipped rules compile `module: pipeline` at the pushed commit; with backend kfp that
    is a Job (docs/security.md). The dev quick start's first run must not end in a 403."""
    objs = rendered("dev")
    rules = yaml.safe_load(one(objs, "ConfigMap", f"{SERVICE_NAME}-rules")["data"]["rules.yaml"])
    assert any("module" in p["source"] for p in rules["pipelines"])
    assert env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))[
        "TRIGGER_BACKEND"
    ]["value"] == ("kfp")
    assert one(objs, "Role", f"{SERVICE_NAME}-compile")
    binding = one(objs, "RoleBinding", f"{SERVICE_NAME}-compile")
    assert binding["subjects"][0]["name"] == SERVICE_NAME


def test_the_docs_outbound_values_set_what_they_say(tmp_path: Path) -> None:
    """docs/deployment.md's outbound.yaml (statuses, MLflow, reconcile S3) over the prod
    profile: the settings reach the containers, the tokens are secret files, and the
    NetworkPolicy admits MinIO and MLflow."""
    from trigger_service.settings import Settings

    blocks = _doc_values_blocks(DOCS)
    assert "outbound.yaml" in blocks, "docs/deployment.md lost its outbound values example"
    f = tmp_path / "outbound.yaml"
    f.write_text(blocks["outbound.yaml"])
    objs = helm_render("songs", ("prod.yaml", f))
    for name, c in ((SERVICE_NAME, "trigger-service"), (WORKER_NAME, "worker")):
        env = env_of(container(one(objs, "Deployment", name), c))
        assert env["TRIGGER_MODEL_REGISTRY"]["value"] == "mlflow"
        assert env["TRIGGER_S3_ENDPOINT"]["value"] == "minio.minio.svc.cluster.local:9000"
        for key in ("github-api-token", "s3-access-key", "s3-secret-key"):
            name_ = f"TRIGGER_{key.upper().replace('-', '_')}_FILE"
            assert env[name_]["value"] == f"/etc/trigger/secrets/{key}"
            assert name_.removeprefix("TRIGGER_").lower() in Settings.model_fields
    policy = one(objs, "NetworkPolicy", SERVICE_NAME)
    anywhere = {p["port"] for r in policy["spec"]["egress"] if "to" not in r for p in r["ports"]}
    assert {9000, 5000} <= anywhere


def test_openshift_compile_jobs_ask_for_no_user_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """With openshift: true the service's compile Jobs, the pods it creates itself, carry no
    fixed user id either (restricted-v2 would refuse runAsUser 65532): the rendered env, read
    by Settings, makes a Job manifest without runAsUser; without the switch it has one."""
    from trigger_service.rules.model import PipelineSpec
    from trigger_service.settings import Settings
    from trigger_service.versions.k8s_compile import JobCompiler

    spec = PipelineSpec.model_validate(
        {
            "name": "songs",
            "source": {
                "repository": "https://git.example/x.git",
                "module": "pipeline",
                "image_template": "img:{short_commit}",
            },
        }
    )

    def job_user(files: tuple[str, ...]) -> object:
        objs = helm_render("songs-ai", files, ("rbac.compileJobs=true",))
        env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
        monkeypatch.delenv("TRIGGER_COMPILE_RUN_AS_USER", raising=False)
        if "TRIGGER_COMPILE_RUN_AS_USER" in env:
            monkeypatch.setenv(
                "TRIGGER_COMPILE_RUN_AS_USER", env["TRIGGER_COMPILE_RUN_AS_USER"]["value"]
            )
        job = JobCompiler.from_settings(Settings()).job_manifest(spec, "a" * 40, "img:1", "n")
        return job["spec"]["template"]["spec"]["securityContext"].get("runAsUser", "absent")

    assert job_user(("openshift.yaml",)) == "absent"
    assert job_user(()) == 65532


def test_the_docs_external_urls_are_routed_by_the_ingress() -> None:
    """Every path the docs call at the Ingress host (trigger.example.com) is one the chart's
    Ingress routes: /models/.../promote once was, and the ingress controller answered 404."""
    docs = sorted((DOCS.parent).glob("*.md"))
    paths = {
        m.group(1)
        for doc in docs
        for m in re.finditer(
            r"https://(?:[^@/\s]*@)?trigger\.example\.com(/[^\s\"'`)]*)", doc.read_text()
        )
    }
    assert paths, "no external URL found in the docs"
    objs = helm_render("songs", (), ("ingress.enabled=true",))
    ingress = one(objs, "Ingress", SERVICE_NAME)
    assert ingress["spec"]["rules"][0]["host"] == "trigger.example.com"
    routes = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]

    def routed(path: str) -> bool:
        return any(
            path == r["path"] if r["pathType"] == "Exact" else path.startswith(r["path"])
            for r in routes
        )

    assert [p for p in sorted(paths) if not routed(p)] == []


def test_compile_job_pods_get_no_network() -> None:
    """With rbac.compileJobs the chart isolates the Job pods the service creates: the policy
    selects exactly the labels k8s_compile.py puts on them and allows no traffic at all."""
    from trigger_service.rules.model import PipelineSpec
    from trigger_service.versions.k8s_compile import JobCompiler

    assert not find(helm_render("songs"), "NetworkPolicy", f"{SERVICE_NAME}-compile")
    objs = helm_render("songs", (), ("rbac.compileJobs=true",))
    policy = one(objs, "NetworkPolicy", f"{SERVICE_NAME}-compile")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    spec = PipelineSpec.model_validate(
        {
            "name": "songs",
            "source": {
                "repository": "https://git.example/x.git",
                "module": "pipeline",
                "image_template": "img:{short_commit}",
            },
        }
    )
    job = JobCompiler(None, 60).job_manifest(spec, "a" * 40, "img:1", "n")
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    # ... and the service's own policy does not select the Job's pods.
    service_selector = one(objs, "NetworkPolicy", SERVICE_NAME)["spec"]["podSelector"]
    assert not service_selector["matchLabels"].items() <= pod_labels.items()


# The resolver pods as each platform runs them: labels and the port they listen on (OpenShift's
# dns-default Service maps 53 to its pods' 5353, and a NetworkPolicy sees the pods' port).
DNS_PODS = {
    "kubernetes": ({"k8s-app": "kube-dns"}, 53),
    "openshift": ({"dns.operator.openshift.io/daemonset-dns": "default"}, 5353),
}


@pytest.mark.parametrize(
    ("profile", "platform"),
    [
        ("defaults", "kubernetes"),
        ("dev", "kubernetes"),
        ("prod", "kubernetes"),
        ("openshift", "openshift"),
    ],
)
def test_network_policy_admits_the_platforms_dns(profile: str, platform: str) -> None:
    labels, port = DNS_PODS[platform]
    policy = one(rendered(profile), "NetworkPolicy", SERVICE_NAME)
    admitting = [
        r
        for r in policy["spec"]["egress"]
        for peer in r.get("to", [])
        if peer.get("namespaceSelector") == {}
        and peer["podSelector"]["matchLabels"].items() <= labels.items()
        and {(p["port"], p["protocol"]) for p in r["ports"]} >= {(port, "UDP"), (port, "TCP")}
    ]
    assert admitting, f"{profile}: no egress rule reaches the {platform} DNS pods on {port}"
