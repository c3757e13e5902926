"""A pushed commit's compile step cannot read the service's credentials (embedded default).

The malicious module below does what an attacker's commit would: it reads the parent's
/proc/<ppid>/environ, the real service's /proc/<pid>/environ and /mem, every /proc/*/environ and
/proc/*/cmdline, and the secret files, and hands everything it found back as its "compiled
pipeline" (which the service stores). The control test runs the same probe without the sandbox
against a process holding a secret and finds it, so the probe itself is shown to work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.repo import GitRepo
from tests.support.server import running_service
from trigger_service.versions.sandbox import Limits, Mode, ProcessSandbox, _namespaces_work

PROBE = r"""
import glob, json, os, sys
targets = json.loads(os.environ.get("PROBE_TARGETS", "[]")) or FILES_TO_TRY
targets += [f"/proc/{os.getppid()}/environ", f"/proc/{os.getppid()}/mem"]
targets += glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline")
found, refused = {}, {}
for path in targets:
    try:
        with open(path, "rb") as handle:
            found[path] = handle.read(1 << 20).decode("latin-1")
    except OSError as exc:
        refused[path] = exc.strerror
report = {"found": found, "refused": refused, "environ": dict(os.environ), "uid": os.getuid(),
          "pids": sorted(p for p in os.listdir("/proc") if p.isdigit())}
try:
    open("/etc/probe-was-here", "w").close()
    report["wrote_outside"] = True
except OSError:
    report["wrote_outside"] = False
out = sys.argv[sys.argv.index("--output") + 1]
with open(out, "w") as handle:
    json.dump(report, handle)
"""

SECRETS = {
    "TRIGGER_GITHUB_SECRET": "gh-secret-5f1e9a77c3",
    "TRIGGER_MANUAL_TOKEN": "manual-token-0b7d42e19a",
    "TRIGGER_S3_SECRET_KEY": "s3-secret-9c2e77aa01",
}
FILE_SECRETS = {
    "TRIGGER_GITEA_SECRET_FILE": "gitea-secret-3a8d66f2b4",
    "TRIGGER_KFP_TOKEN_FILE": "kfp-token-e41c0d9b57",
}


def evil_repo(path: Path, targets: list[str]) -> GitRepo:
    repo = GitRepo(path)
    code = PROBE.replace("FILES_TO_TRY", json.dumps(targets))
    repo.commit({"evil/__init__.py": "", "evil/__main__.py": code}, "an innocent change")
    return repo


def rules(repo: GitRepo) -> str:
    return f"""\
pipelines:
  - name: songs
    source:
      repository: {repo.url}
      module: evil
      image_template: "registry.example/songs:{{commit}}"
    defaults:
      data_uri: songs.csv
triggers:
  - name: by-hand
    on: manual
"""


@pytest.fixture
def secret_dir() -> Iterator[Path]:
    """A folder anyone may enter (pytest's own tmp is 0700, which would hide the files anyway)."""
    folder = Path(tempfile.mkdtemp(prefix="trigger-secrets-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and namespaces: Linux")
def test_a_malicious_compile_finds_none_of_the_services_secrets(
    tmp_path: Path, secret_dir: Path
) -> None:
    files = {}
    for env, value in FILE_SECRETS.items():
        target = secret_dir / env.lower()
        target.write_text(value)
        target.chmod(0o644)  # as a Kubernetes Secret volume mounts it by default
        files[env] = str(target)
    repo = evil_repo(tmp_path / "repo", [*files.values()])
    (tmp_path / "rules.yaml").write_text(rules(repo))
    env = {
        "TRIGGER_RULES_PATH": str(tmp_path / "rules.yaml"),
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
        "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_LOG_JSON": "false",
        **SECRETS,
        **files,
    }
    with running_service(env, tmp_path / "service" / "service.log") as service:
        answer = httpx.post(
            f"{service.url}/trigger",
            json={"pipeline": "songs"},
            headers={"Authorization": f"Bearer {SECRETS['TRIGGER_MANUAL_TOKEN']}"},
        )
        assert answer.status_code == 202, answer.text
        packages = tmp_path / "git-cache" / "packages" / "songs"
        deadline = time.monotonic() + 60
        while not list(packages.glob("[0-9a-f]*.yaml")):
            assert "failed permanently" not in service.log(), service.log()[-3000:]
            assert time.monotonic() < deadline, service.log()[-3000:]
            time.sleep(0.3)
        service_pid = service.pid
    report = json.loads(next(packages.glob("[0-9a-f]*.yaml")).read_text())

    everything = json.dumps(report)
    for value in [*SECRETS.values(), *FILE_SECRETS.values()]:
        assert value not in everything
    # The probe did run and did look: the (world-readable) secret files read as empty, and
    # /proc shows no process but its own.
    assert all(report["found"][path] == "" for path in files.values())
    assert str(service_pid) not in report["pids"]
    assert report["pids"] == ["1"]  # alone in its PID namespace
    assert report["uid"] == (65534 if os.geteuid() == 0 else 0)
    assert report["wrote_outside"] is False
    assert set(report["environ"]) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
        "OUTPUT_DIR",
        "LANG",
    }


def test_the_probe_finds_a_secret_when_nothing_protects_it(tmp_path: Path) -> None:
    """Control: the same probe, run plainly beside a process holding a secret, finds it."""
    repo = evil_repo(tmp_path / "repo", [])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={"HELD_SECRET": "held-secret-77aa"},
    )
    try:
        out = tmp_path / "report.json"
        subprocess.run(
            [sys.executable, "-m", "evil", "compile", "--output", str(out)],
            cwd=repo.path,
            env={"PYTHONPATH": str(repo.path), "PROBE_TARGETS": json.dumps([])},
            check=True,
        )
    finally:
        holder.kill()
        holder.wait()
    assert "held-secret-77aa" in out.read_text()


def test_a_compile_that_runs_too_long_is_killed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    sandbox = ProcessSandbox(Limits(wall_seconds=2, cpu_seconds=60))
    started = time.monotonic()
    with pytest.raises(Exception, match="took over 2s"):
        sandbox.run([sys.executable, "-c", "import time; time.sleep(30)"], tree, "out")
    assert time.monotonic() - started < 15


def test_an_output_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    """The child could plant `pipeline.yaml -> /etc/shadow`: the service must not read it."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tmp_path / "outside").write_text("the service's private file")
    script = f"import os; os.symlink({str(tmp_path / 'outside')!r}, '{{output_dir}}/out')"
    result, output = ProcessSandbox(Limits(wall_seconds=30), mode="plain").run(
        [sys.executable, "-c", script], tree, "out"
    )
    assert result.returncode == 0, result.stderr
    assert output == b""


def test_plain_mode_passes_only_the_allow_listed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIGGER_GITHUB_SECRET", "leak-me")
    tree = tmp_path / "tree"
    tree.mkdir()
    script = "import json, os; open('{output_dir}/env', 'w').write(json.dumps(dict(os.environ)))"
    result, output = ProcessSandbox(Limits(wall_seconds=30), mode="plain").run(
        [sys.executable, "-c", script], tree, "env"
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(output)
    assert "TRIGGER_GITHUB_SECRET" not in seen
    assert seen["PYTHONPATH"].endswith("/src")


def test_auto_falls_back_to_plain_and_says_so_where_namespaces_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from trigger_service.versions import sandbox as module

    monkeypatch.setattr(module, "_namespaces_work", lambda: False)
    tree = tmp_path / "tree"
    tree.mkdir()
    script = "import os; open('{output_dir}/pid', 'w').write(str(os.getpid()))"
    result, output = ProcessSandbox(Limits(wall_seconds=30), mode="auto").run(
        [sys.executable, "-c", script], tree, "pid"
    )
    assert result.returncode == 0, result.stderr
    assert int(output) > 1  # not PID 1 of a namespace of its own
    assert "namespaces unavailable" in caplog.text


def test_namespaces_required_but_unavailable_fails_the_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trigger_service.errors import PermanentError
    from trigger_service.versions import sandbox as module

    monkeypatch.setattr(module, "_namespaces_work", lambda: False)
    with pytest.raises(PermanentError, match="cannot create namespaces"):
        ProcessSandbox(Limits(wall_seconds=30), mode="namespaces").run(
            [sys.executable, "-c", "pass"], tmp_path, "out"
        )


@pytest.mark.parametrize("mode", ["plain", "namespaces"])
def test_each_mode_sets_the_limits(tmp_path: Path, mode: Mode) -> None:
    if mode == "namespaces" and not _namespaces_work():
        pytest.skip("unshare cannot create namespaces on this machine")
    tree = tmp_path / "tree"
    tree.mkdir()
    script = (
        "import json, resource; open('{output_dir}/limits', 'w').write(json.dumps("
        "[resource.getrlimit(r)[1] for r in "
        "(resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NOFILE)]))"
    )
    limits = Limits(wall_seconds=30, cpu_seconds=17, memory_bytes=1024**3, open_files=99)
    result, output = ProcessSandbox(limits, mode=mode).run(
        [sys.executable, "-c", script], tree, "limits"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(output) == [17, 1024**3, 99]
