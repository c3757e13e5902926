"""Compiling in a Kubernetes Job from the commit's image: no credentials, limits, the YAML read
back from the log, the Job deleted; against a loopback double of the API (tests/support)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.k8s_double import KubeDouble
from tests.support.repo import GitRepo
from trigger_service.errors import PermanentError
from trigger_service.rules.model import PipelineSpec
from trigger_service.versions.k8s_compile import JobCompiler, extract

COMPILE = """\
import sys
out = sys.argv[sys.argv.index("--output") + 1]
image = sys.argv[sys.argv.index("--image") + 1]
print("compiling for", image)
open(out, "w").write("# compiled\\npipelineInfo:\\n  name: songs\\n  image: " + image + "\\n")
"""


def spec() -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "songs",
            "source": {
                "repository": "https://git.example/team/songs.git",
                "module": "songs_pipeline",
                "image_template": "registry.example/songs:{commit}",
            },
        }
    )


@pytest.fixture
def commit(tmp_path: Path) -> tuple[GitRepo, str]:
    repo = GitRepo(tmp_path / "repo")
    sha = repo.commit(
        {"songs_pipeline/__init__.py": "", "songs_pipeline/__main__.py": COMPILE}, "init"
    )
    return repo, sha


def compiler(kube: KubeDouble) -> JobCompiler:
    return JobCompiler("team-ml", timeout=60, api_client=kube.api_client(), poll_seconds=0.05)


def test_the_job_compiles_from_the_commits_image_without_credentials(
    tmp_path: Path, commit: tuple[GitRepo, str]
) -> None:
    repo, sha = commit
    image = f"registry.example/songs:{sha}"
    output = tmp_path / "out.yaml"
    with KubeDouble(images={image: repo.path}) as kube:
        compiler(kube).compile(spec(), tmp_path, sha, output)

    assert output.read_text() == f"# compiled\npipelineInfo:\n  name: songs\n  image: {image}\n"
    [job] = kube.created
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == image
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {e["name"] for e in container["env"]} == {"NONCE", "HOME"}
    assert "envFrom" not in container
    assert [v for v in pod["volumes"] if set(v) - {"name", "emptyDir"}] == []
    assert container["resources"]["limits"] == {"cpu": "1", "memory": str(2 * 1024**3)}
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert job["spec"]["activeDeadlineSeconds"] == 60
    assert job["spec"]["backoffLimit"] == 0
    assert kube.deleted == [job["metadata"]["name"]]
    assert not kube.jobs
    assert all(
        r.startswith(("POST /apis/batch", "GET /apis/batch", "GET /api/v1", "DELETE"))
        for r in kube.requests
    )


def test_a_failing_compile_names_the_reason_and_cleans_up(
    tmp_path: Path, commit: tuple[GitRepo, str]
) -> None:
    repo, _ = commit
    broken = repo.commit({"songs_pipeline/__main__.py": "raise SystemExit('no pipeline here')\n"})
    with (
        KubeDouble(images={f"registry.example/songs:{broken}": repo.path}) as kube,
        pytest.raises(PermanentError, match="no pipeline here"),
    ):
        compiler(kube).compile(spec(), tmp_path, broken, tmp_path / "out.yaml")
    assert not (tmp_path / "out.yaml").exists()
    assert len(kube.deleted) == 1 and not kube.jobs


def test_an_image_that_does_not_exist_fails_permanently(
    tmp_path: Path, commit: tuple[GitRepo, str]
) -> None:
    _, sha = commit
    with KubeDouble(images={}) as kube, pytest.raises(PermanentError, match="Failed to pull image"):
        compiler(kube).compile(spec(), tmp_path, sha, tmp_path / "out.yaml")


def test_without_rbac_the_error_says_forbidden(tmp_path: Path, commit: tuple[GitRepo, str]) -> None:
    _, sha = commit
    with (
        KubeDouble(images={}, forbid=True) as kube,
        pytest.raises(PermanentError, match="HTTP 403: post forbidden"),
    ):
        compiler(kube).compile(spec(), tmp_path, sha, tmp_path / "out.yaml")


def test_the_yaml_is_taken_between_the_nonce_markers_only() -> None:
    log = "noise\nBEGIN-abc\nfake: 1\nEND-abc\nBEGIN-n1\na: 1\nb: 2\nEND-n1\ntrailer\n"
    assert extract(log, "n1") == "a: 1\nb: 2\n"
    assert extract(log, "zz") is None
    assert extract("BEGIN-n1\nunterminated\n", "n1") is None


CHART = Path(__file__).resolve().parents[2] / "helm" / "kfp-gitops-trigger"


@pytest.mark.parametrize(("backend", "granted"), [("kfp", True), ("shadow", False)])
def test_the_chart_grants_exactly_what_the_compile_job_needs(backend: str, granted: bool) -> None:
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart")
    import yaml

    chart = helm.Chart.load(str(CHART))
    try:
        # rbac.compileJobs asks for the rights; only backend kfp compiles in Jobs.
        values = {"settings": {"backend": backend}, "rbac": {"compileJobs": True}}
        rendered = chart.render(values, name="t", namespace="ml")
    finally:
        chart.close()
    objects = [
        doc
        for path, text in rendered.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc.get("kind") in ("Role", "RoleBinding")
    ]
    compile_roles = [o for o in objects if o["metadata"]["name"].endswith("-compile")]
    if not granted:
        assert compile_roles == []
        return
    role = next(o for o in compile_roles if o["kind"] == "Role")
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    binding = next(o for o in compile_roles if o["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    # The service's main Role (the one docs/kubeflow.md shows) is unchanged by it.
    main = next(
        o for o in objects if o["kind"] == "Role" and "compile" not in o["metadata"]["name"]
    )
    assert not any("batch" in r["apiGroups"] for r in main["rules"])


@pytest.mark.parametrize(("env", "expected"), [(None, 65532), ("", None), ("20001", 20001)])
def test_job_user_id_from_settings(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: int | None
) -> None:
    """TRIGGER_COMPILE_RUN_AS_USER: a fixed id by default; empty (the chart's openshift: true)
    sets none, since OpenShift's restricted-v2 SCC refuses a pod asking for an id outside the
    project's range; runAsNonRoot stays either way."""
    from trigger_service.settings import Settings

    if env is None:
        monkeypatch.delenv("TRIGGER_COMPILE_RUN_AS_USER", raising=False)
    else:
        monkeypatch.setenv("TRIGGER_COMPILE_RUN_AS_USER", env)
    job = JobCompiler.from_settings(Settings()).job_manifest(spec(), "a" * 40, "img:1", "n")
    context = job["spec"]["template"]["spec"]["securityContext"]
    assert context.get("runAsUser") == expected
    assert context["runAsNonRoot"] is True


def test_job_user_id_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from trigger_service.settings import Settings

    monkeypatch.setenv("TRIGGER_COMPILE_RUN_AS_USER", "0")
    with pytest.raises(ValidationError, match="compile_run_as_user"):
        Settings()
