"""The Dockerfiles, read as text (no Docker engine runs here, so nothing is built): the service
image has git and no TensorFlow, both run as a numeric non-root user, and install the project
the way pyproject.toml says."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.deploy.conftest import DOCKER, REPO

SERVICE = DOCKER / "trigger-service.Dockerfile"
PIPELINE = DOCKER / "pipeline.Dockerfile"


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage(text: str) -> list[tuple[str, str]]:
    ins = _instructions(text)
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


@pytest.mark.parametrize("path", [SERVICE, PIPELINE], ids=lambda p: p.name)
def test_runs_as_numeric_non_root_user(path) -> None:
    users = [rest for w, rest in _final_stage(path.read_text()) if w == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, (
        "USER must be a numeric non-root uid (runAsNonRoot checks it)"
    )


@pytest.mark.parametrize("path", [SERVICE, PIPELINE], ids=lambda p: p.name)
def test_base_images_are_pinned_slim_python_matching_pyproject(path) -> None:
    text = path.read_text()
    version = re.search(r"ARG PYTHON_VERSION=(\d+\.\d+)", text).group(1)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    lo, hi = re.search(r">=(\d+\.\d+),<(\d+\.\d+)", requires).groups()
    as_tuple = lambda v: tuple(map(int, v.split(".")))  # noqa: E731
    assert as_tuple(lo) <= as_tuple(version) < as_tuple(hi)
    for w, rest in _instructions(text):
        if w == "FROM":
            image = rest.split()[0]
            assert image.startswith("python:${PYTHON_VERSION}-slim"), image
            assert ":latest" not in image


def test_service_image_has_git_and_no_tensorflow() -> None:
    text = SERVICE.read_text()
    runs = " ".join(rest for w, rest in _instructions(text) if w == "RUN")
    assert re.search(r"apt-get install [^&]*\bgit\b", runs), "git is needed for the GitOps fetch"
    assert "rm -rf /var/lib/apt/lists" in runs
    assert "tensorflow" not in runs.replace("'tensorflow' not in sys.modules", "")
    assert "[pipeline]" not in runs, "the service image must not install the pipeline extra"
    assert "pip wheel --wheel-dir /wheels -c constraints.txt ." in runs
    entry = [rest for w, rest in _final_stage(text) if w == "ENTRYPOINT"]
    assert entry and "trigger-service" in entry[-1]
    assert [rest for w, rest in _final_stage(text) if w == "CMD"][-1] == '["serve"]'
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "trigger-service" in scripts


def test_pipeline_image_installs_the_pipeline_extra() -> None:
    text = PIPELINE.read_text()
    runs = " ".join(rest for w, rest in _instructions(text) if w == "RUN")
    assert "'.[pipeline]'" in runs
    assert "import tensorflow, tf2onnx, onnxruntime, minio, pipeline" in runs
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("tensorflow") for d in extras["pipeline"])
    assert any(d.startswith("tf2onnx") for d in extras["pipeline"])
    assert any(d.startswith("onnxruntime") for d in extras["pipeline"])
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("minio") for d in deps)


@pytest.mark.parametrize("path", [SERVICE, PIPELINE], ids=lambda p: p.name)
def test_build_context_is_limited(path) -> None:
    ignore = path.with_name(path.name + ".dockerignore").read_text().splitlines()
    assert ignore[1:2] == ["*"] or "*" in ignore, "start from nothing"
    copied = {
        rest.split()[0]
        for w, rest in _instructions(path.read_text())
        if w == "COPY" and not rest.startswith("--from")
    }
    for src in copied:
        assert f"!{src}" in ignore or f"!{src}/**" in ignore, f"{src} is copied but ignored"
