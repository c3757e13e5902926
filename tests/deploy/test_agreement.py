"""The properties where the deployment meets the code: the compiled pipeline (PVC name, mount
path, models root, model name, image) against the chart's profiles and the manifests rendered
from it, and the service's code (Settings fields, routes, port, metrics)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    DOCKER,
    DOCS,
    OVERLAYS,
    PROFILES,
    REPO,
    SERVICE_NAME,
    chart_values,
    container,
    env_of,
    find,
    one,
    render,
    rendered,
)

# The contract, as the issue states it. Everything below is compared with these and each other.
PVC_NAME = "models"
MODELS_ROOT = "/models"
MODEL_NAME = "songs"
PORT = 8080
ROUTES = {
    ("POST", "/webhooks/github"),
    ("POST", "/webhooks/gitlab"),
    ("POST", "/webhooks/gitea"),
    ("POST", "/webhooks/storage"),
    ("POST", "/webhooks/alertmanager"),
    ("POST", "/trigger"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
PIPELINE_IMAGE_REPO = "ghcr.io/kfp-gitops/pipeline"


# --- the pipeline ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("pipeline") / "pipeline.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [d for d in yaml.safe_load_all(out.read_text()) if d]


def _root_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    params = spec["root"]["inputDefinitions"]["parameters"]
    return {k: v.get("defaultValue") for k, v in params.items()}


def test_compiled_pipeline_parameters(compiled: list[dict[str, Any]]) -> None:
    defaults = _root_defaults(compiled[0])
    assert defaults["models_root"] == MODELS_ROOT
    assert defaults["pvc_name"] == PVC_NAME
    assert defaults["model_name"] == MODEL_NAME


def test_compiled_pipeline_mounts_the_models_pvc_at_the_models_root(
    compiled: list[dict[str, Any]],
) -> None:
    assert len(compiled) == 2, "the compiled pipeline has no kubernetes platform spec"
    executors = compiled[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounts = [m for e in executors.values() for m in e.get("pvcMount", [])]
    assert mounts, "no step mounts a PVC"
    defaults = _root_defaults(compiled[0])
    for m in mounts:
        assert m["mountPath"] == MODELS_ROOT
        name = m.get("pvcNameParameter", {})
        if "componentInputParameter" in name:
            assert defaults[name["componentInputParameter"]] == PVC_NAME
        else:
            assert name.get("runtimeValue", {}).get("constant", m.get("constant")) == PVC_NAME


def test_compiled_pipeline_uses_the_pipeline_image(compiled: list[dict[str, Any]]) -> None:
    images = {e["container"]["image"] for e in compiled[0]["deploymentSpec"]["executors"].values()}
    assert len(images) == 1, images
    (image,) = images
    assert image.rsplit(":", 1)[0] == PIPELINE_IMAGE_REPO
    # The image built by docker/pipeline.Dockerfile is the one docs tell people to tag and pass.
    assert PIPELINE_IMAGE_REPO in DOCS.read_text()
    assert (DOCKER / "pipeline.Dockerfile").exists()


def test_pipeline_mount_path_constant() -> None:
    from pipeline import config

    assert config.MODELS_MOUNT_PATH == MODELS_ROOT
    assert config.DEFAULT_IMAGE.rsplit(":", 1)[0] == PIPELINE_IMAGE_REPO


# --- manifests -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_manifests_models_pvc(name: str) -> None:
    pvc = one(render(f"overlays/{name}"), "PersistentVolumeClaim", PVC_NAME)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def _ovms_model_path(args: list[str]) -> tuple[str, str, str]:
    joined = " ".join(args)
    path = re.search(r"--model_path[ =](\S+)", joined).group(1)
    name = re.search(r"--model_name[ =](\S+)", joined).group(1)
    poll = re.search(r"--file_system_poll_wait_seconds[ =](\S+)", joined).group(1)
    return path, name, poll


def test_manifests_ovms_reads_the_published_layout() -> None:
    objs = render("overlays/dev")
    dep = one(objs, "Deployment", f"ovms-{MODEL_NAME}")
    c = container(dep, "ovms")
    path, name, poll = _ovms_model_path(c["args"])
    assert (path, name) == (f"{MODELS_ROOT}/{MODEL_NAME}", MODEL_NAME)
    assert int(poll) > 0, "polling must be on when the service does not roll out"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == MODELS_ROOT)
    vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert vol["persistentVolumeClaim"]["claimName"] == PVC_NAME and mount["readOnly"]
    svc_env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert svc_env["TRIGGER_MODEL_SERVER"]["value"] == "poll"


@pytest.mark.parametrize("name", [n for n in sorted(OVERLAYS) if n != "dev"])
def test_manifests_kserve_reads_the_published_layout(name: str) -> None:
    objs = render(f"overlays/{name}")
    (isvc,) = find(objs, "InferenceService")
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == f"pvc://{PVC_NAME}/{MODEL_NAME}"
    assert model["modelFormat"]["name"] == "onnx"
    env = env_of(container(one(objs, "Deployment", SERVICE_NAME), "trigger-service"))
    assert env["TRIGGER_MODEL_SERVER"]["value"] == "kserve"
    assert env["TRIGGER_KSERVE_INFERENCESERVICE"]["value"] == isvc["metadata"]["name"]
    # The runtime serves /mnt/models (where KServe mounts pvc://models/songs) with polling off:
    # the service's patch is what rolls a new version out.
    for sr in find(objs, "ServingRuntime"):
        path, _, poll = _ovms_model_path(sr["spec"]["containers"][0]["args"])
        assert path == "/mnt/models" and int(poll) == 0


def _service_models_root(objs: tuple[dict[str, Any], ...]) -> tuple[str, dict[str, Any]]:
    """TRIGGER_MODELS_ROOT and the volume mounted there (read-only, or the test fails)."""
    dep = one(objs, "Deployment", SERVICE_NAME)
    c = container(dep, "trigger-service")
    root = env_of(c)["TRIGGER_MODELS_ROOT"]["value"]
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == root]
    assert mount.get("readOnly") is True, "the service only reads the models volume"
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert vol["persistentVolumeClaim"].get("readOnly") is True
    return root, vol


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_manifests_service_reads_the_models_the_pipeline_publishes(name: str) -> None:
    """The service finds a run's model (metadata.json) where the pipeline publishes it and the
    model server reads it: same PVC, the pipeline's models_root, <root>/<model> served."""
    objs = render(f"overlays/{name}")
    root, vol = _service_models_root(objs)
    assert root == MODELS_ROOT
    assert vol["persistentVolumeClaim"]["claimName"] == PVC_NAME
    for dep in find(objs, "Deployment", f"ovms-{MODEL_NAME}"):
        path, model, _ = _ovms_model_path(container(dep, "ovms")["args"])
        assert path == f"{root}/{model}"
    for isvc in find(objs, "InferenceService"):
        uri = isvc["spec"]["predictor"]["model"]["storageUri"]
        # KServe mounts pvc://<claim>/<sub-path>; the service sees the claim at its root.
        assert uri == f"pvc://{vol['persistentVolumeClaim']['claimName']}/{MODEL_NAME}"


def test_service_models_root_is_the_pipelines(compiled: list[dict[str, Any]]) -> None:
    """Directly: where the compiled pipeline publishes (models_root on the PVC pvc_name) is
    where every overlay's service reads, and the chart's models.root / models.pvc.name."""
    defaults = _root_defaults(compiled[0])
    published = (defaults["models_root"], defaults["pvc_name"])
    for name in OVERLAYS:
        root, vol = _service_models_root(render(f"overlays/{name}"))
        assert (root, vol["persistentVolumeClaim"]["claimName"]) == published, name
    v = chart_values()["models"]
    assert (v["root"], v["pvc"]["name"]) == published


# --- the chart --------------------------------------------------------------------------------


def test_chart_models_values() -> None:
    v = chart_values()
    assert v["models"]["name"] == MODEL_NAME
    assert v["models"]["root"] == MODELS_ROOT
    assert v["models"]["pvc"]["name"] == PVC_NAME
    assert v["models"]["pvc"]["accessModes"] == ["ReadWriteMany"]
    assert v["service"]["port"] == PORT
    assert v["settings"]["kfp"]["tokenAudience"] == "pipelines.kubeflow.org"
    assert v["modelServer"]["ovms"]["pollSeconds"] > 0


# --- the service's code ----------------------------------------------------------------------


def _settings_env_names() -> dict[str, str]:
    from trigger_service.settings import Settings

    names: dict[str, str] = {}
    prefix = Settings.model_config.get("env_prefix", "")
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            for c in choices:
                names[str(c).upper()] = field
        elif isinstance(alias, str):
            names[alias.upper()] = field
        else:
            names[f"{prefix}{field}".upper()] = field
    return names


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_settings_accept_the_manifest_env(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build the service's Settings from the Deployment's env (secret files stubbed, valueFrom
    resolved to plausible values): literal values like TRIGGER_BACKEND=kfp must be valid."""
    from trigger_service.settings import Settings

    env = env_of(
        container(one(render(f"overlays/{name}"), "Deployment", SERVICE_NAME), "trigger-service")
    )
    for n, e in env.items():
        if "value" in e:
            value = e["value"]
            if n.endswith(("_SECRET_FILE", "_TOKEN_FILE")):
                stub = tmp_path / Path(value).name
                stub.write_text("stub-secret\n")
                value = str(stub)
        else:
            ref = e["valueFrom"]
            value = "songs" if "fieldRef" in ref else "postgresql+psycopg://u:p@db:5432/trigger"
        monkeypatch.setenv(n, value)
    s = Settings()
    assert s.backend == "kfp"
    assert s.port == PORT
    assert s.host == "0.0.0.0"
    if name == "openshift":  # the DSPA's proxy checks the pod's own token
        assert s.kfp_token_path == Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
        assert s.kfp_ca_file == Path("/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt")
    else:
        assert s.kfp_token_path == Path("/var/run/secrets/kubeflow/pipelines/token")
    assert s.models_root == Path(MODELS_ROOT)
    assert s.git_cache_dir == Path("/var/lib/trigger/git-cache")
    assert s.rules_path.name == "rules.yaml"
    for route in ("github", "gitlab", "gitea", "storage", "alertmanager", "manual"):
        assert s.secret_for(route) == "stub-secret", route
    if name == "dev":
        assert s.model_server == "poll"
    else:
        assert s.model_server == "kserve" and s.kserve_inferenceservice == MODEL_NAME


def test_settings_defaults_match_the_deployment_port() -> None:
    from trigger_service.settings import Settings

    assert Settings.model_fields["port"].default == PORT


def test_service_routes_match_probes_and_webhook_urls() -> None:
    from trigger_service.api import health, webhooks

    routes = {
        (method, r.path)
        for module in (webhooks, health)
        for r in module.router.routes
        for method in getattr(r, "methods", set())
    }
    missing = ROUTES - routes
    assert not missing, f"routes the manifests rely on but the service lacks: {sorted(missing)}"


def test_dockerfile_exposes_the_service_port() -> None:
    text = (DOCKER / "trigger-service.Dockerfile").read_text()
    assert f"EXPOSE {PORT}" in text
    assert f"TRIGGER_PORT={PORT}" in text


# --- the rules file shipped in the ConfigMap ---------------------------------------------------


def _rules_texts() -> dict[str, str]:
    """The rules file each profile ships in its ConfigMap."""
    return {
        name: one(rendered(name), "ConfigMap", f"{SERVICE_NAME}-rules")["data"]["rules.yaml"]
        for name in PROFILES
    }


def test_shipped_rules_load_in_the_service(profile: str) -> None:
    from trigger_service.rules.loader import parse_rules

    rules = parse_rules(_rules_texts()[profile], "rules.yaml")
    # A fresh cluster can fetch it: an https repository that is not a placeholder host, and
    # the released pipeline image (no image per commit that nobody built).
    for p in rules.pipelines:
        assert p.source.repository.startswith("https://"), p.source.repository
        assert "example" not in p.source.repository, p.source.repository
        assert p.source.image_template is None or "{" not in p.source.image_template


def test_rules_agree_with_the_notification_the_alert_and_the_pipeline() -> None:
    rules = yaml.safe_load(_rules_texts()["dev"])
    (pipeline,) = rules["pipelines"]
    assert pipeline["defaults"]["pvc_name"] == PVC_NAME
    assert pipeline["defaults"]["models_root"] == MODELS_ROOT
    assert pipeline["defaults"]["model_name"] == MODEL_NAME
    assert pipeline["source"]["image_template"].rsplit(":", 1)[0] == PIPELINE_IMAGE_REPO
    # PyYAML reads the key `on` as YAML 1.1 true; the service reads YAML 1.2.
    by_kind = {t.get("on", t.get(True)): t for t in rules["triggers"]}
    objs = render("overlays/dev")
    job = one(objs, "Job", "trigger-service-minio-notification")
    env = {
        k: v.get("value")
        for k, v in env_of(job["spec"]["template"]["spec"]["containers"][0]).items()
    }
    data = by_kind["data"]
    assert (data["bucket"], data["prefix"], data["suffix"]) == (
        env["BUCKET"],
        env["PREFIX"],
        env["SUFFIX"],
    )
    drift = by_kind["drift"]
    alerts = {
        r["alert"]: r
        for g in one(objs, "PrometheusRule", SERVICE_NAME)["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert drift["alertname"] in alerts
    for label, value in drift["labels"].items():
        assert alerts[drift["alertname"]]["labels"][label] == value


# --- the alerts and the metrics the service exports ---------------------------------------------


def _service_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, from the service's own prometheus_client objects."""
    from prometheus_client.metrics import MetricWrapperBase

    from trigger_service import metrics

    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            labels = set(obj._labelnames)
            suffixes = {
                "counter": ["_total"],
                "gauge": [""],
                "histogram": ["_bucket", "_sum", "_count"],
                "summary": ["_sum", "_count"],
            }[obj._type]
            for suffix in suffixes:
                out[obj._name + suffix] = labels
    return out


def test_alerts_use_metrics_and_labels_the_service_exports() -> None:
    exported = _service_metrics()
    target_labels = {"namespace", "job", "instance", "pod", "service"}
    pr = one(render("overlays/prod"), "PrometheusRule", SERVICE_NAME)
    for rule in (r for g in pr["spec"]["groups"] for r in g["rules"]):
        expr = rule["expr"]
        for name in re.findall(r"\btrigger_[a-z_]+", expr):
            assert name in exported, (
                f"{rule['alert']}: {name} is not exported by trigger_service.metrics"
            )
            for label in re.findall(rf"{name}\{{([a-z_]+)=", expr):
                assert label in exported[name], f"{rule['alert']}: {name} has no label {label}"
        names = re.findall(r"\btrigger_[a-z_]+", expr)
        for group in re.findall(r"by \(([^)]*)\)", expr) if names else []:
            for label in (x.strip() for x in group.split(",")):
                assert label in target_labels or any(label in exported[n] for n in names), (
                    f"{rule['alert']}: groups by {label}, which no metric in it carries"
                )


def test_chart_schema_enums_are_settings_values() -> None:
    """The schema may narrow a setting's choices (no `local` backend in a cluster: the image has
    no TensorFlow) but never offer one Settings refuses."""
    from trigger_service.settings import Settings

    schema = json.loads((CHART / "values.schema.json").read_text())
    settings = schema["properties"]["settings"]["properties"]
    backends = set(typing.get_args(Settings.model_fields["backend"].annotation))
    assert set(settings["backend"]["enum"]) <= backends
    assert "local" not in settings["backend"]["enum"]
    servers = set(typing.get_args(Settings.model_fields["model_server"].annotation))
    kinds = schema["properties"]["modelServer"]["properties"]["kind"]["enum"]
    mapping = {"ovms": "poll", "kserve": "kserve", "none": "none"}
    assert set(kinds) == set(mapping) and {mapping[k] for k in kinds} <= servers
