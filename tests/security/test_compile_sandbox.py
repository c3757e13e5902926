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
    # The probe did run and did look: the (world-readable) secret files read as empty (or, under
    # a masked /tmp, as missing), and /proc shows no process but its own.
    for path in files.values():
        assert report["found"].get(path) == "" or path in report["refused"]
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


needs_namespaces = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _namespaces_work(),
    reason="unshare cannot create namespaces on this machine",
)

SOCKET_PROBE = """
import json, os, socket, sys
report = {"tmp": sorted(os.listdir("/tmp")), "run": sorted(os.listdir("/run"))}
try:
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(5)
    client.connect(sys.argv[1])
    client.sendall(b"probe")
    report["socket"] = client.recv(10).decode()
except OSError as exc:
    report["socket"] = "refused: " + exc.strerror
open("{output_dir}/report", "w").write(json.dumps(report))
"""


@needs_namespaces
@pytest.mark.parametrize("mode", ["plain", "namespaces"])
def test_unix_sockets_and_scratch_folders_are_out_of_reach(tmp_path: Path, mode: Mode) -> None:
    """A read-only mount does not stop connect() on a Unix socket (a database's, a container
    runtime's): /tmp, /run, /var/tmp and /dev/shm are empty to the child. Plain mode is the
    control: there the same probe reaches the socket."""
    import socket
    import threading

    folder = Path(tempfile.mkdtemp(prefix="trigger-socket-", dir="/tmp"))
    folder.chmod(0o755)
    path = folder / "service.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    path.chmod(0o777)
    server.listen(1)
    heard: list[bytes] = []

    def answer() -> None:
        try:
            conn, _ = server.accept()
            heard.append(conn.recv(10))
            conn.sendall(b"pong")
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    tree = tmp_path / "tree"
    tree.mkdir()
    try:
        result, output = ProcessSandbox(Limits(wall_seconds=60), mode=mode).run(
            [sys.executable, "-c", SOCKET_PROBE, str(path)], tree, "report"
        )
    finally:
        server.close()
        shutil.rmtree(folder)
    assert result.returncode == 0, result.stderr
    report = json.loads(output)
    if mode == "plain":
        assert report["socket"] == "pong" and heard == [b"probe"]
        return
    assert report["socket"].startswith("refused"), report
    assert heard == []
    # Its own work folder only, and the folder of the interpreter it runs when that lies under
    # /tmp (a checkout there, as CI may make, keeps its .venv visible to the child).
    interpreter = {
        Path(p).resolve().relative_to("/tmp").parts[0]
        for p in (sys.prefix, sys.base_prefix, sys.executable)
        if Path(p).resolve().is_relative_to("/tmp")
    }
    work = [name for name in report["tmp"] if name.startswith("trigger-sandbox-")]
    assert [name for name in report["tmp"] if name not in interpreter] == work
    assert len(work) == 1
    assert report["run"] in ([], ["mount"])  # util-linux's own state, in the fresh tmpfs


@needs_namespaces
def test_the_services_data_is_hidden_from_a_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The git cache (every tracked repository), the SQLite store and the local backend's
    folders, world-readable as a default umask leaves them, read as missing or empty."""
    from trigger_service.settings import Settings
    from trigger_service.versions.compiling import ProcessCompiler, make_compiler

    home = Path(tempfile.mkdtemp(prefix="trigger-data-"))  # outside pytest's 0700 tmp
    try:
        home.chmod(0o755)
        var = home / "var"
        for name in ("git-cache/trees/other", "runs", "data", "models"):
            (var / name).mkdir(parents=True)
        planted = {
            var / "git-cache/trees/other/private.py": "other-team-code-4d1c",
            var / "runs/run.log": "run-log-8e2a",
            var / "data/songs.csv": "training-data-19b7",
            var / "models/model.onnx": "model-bytes-6f0d",
            var / "trigger.db": "event-payloads-a3c5",
            var / "trigger.db-wal": "event-wal-77e0",
        }
        for path, text in planted.items():
            path.write_text(text)
            path.chmod(0o644)
        monkeypatch.chdir(home)  # relative settings resolve against the service's folder
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            backend="shadow",
            compile_sandbox="namespaces",
            database_url="sqlite:///./var/trigger.db",
            git_cache_dir=Path("var/git-cache"),
            runs_dir=Path("var/runs"),
            data_dir=Path("var/data"),
            models_root=Path("var/models"),
        )
        compiler = make_compiler(settings)
        assert isinstance(compiler, ProcessCompiler)
        tree = tmp_path / "tree"
        tree.mkdir()
        script = (
            "import json, sys\n"
            "def read(p):\n"
            "    try:\n"
            "        return open(p).read()\n"
            "    except OSError as exc:\n"
            "        return exc.strerror\n"
            "open('{output_dir}/r', 'w').write(json.dumps([read(p) for p in sys.argv[1:]]))"
        )
        result, output = compiler.sandbox.run(
            [sys.executable, "-c", script, *map(str, planted)], tree, "r"
        )
    finally:
        shutil.rmtree(home)
    assert result.returncode == 0, result.stderr
    seen = json.loads(output)
    assert len(seen) == len(planted)
    for text in planted.values():
        assert text not in json.dumps(seen)


@needs_namespaces
def test_processes_and_file_sizes_are_limited(tmp_path: Path) -> None:
    """A fork bomb or a 10 GB file would reach the host: RLIMIT_NPROC and RLIMIT_FSIZE stop
    them inside the namespace."""
    tree = tmp_path / "tree"
    tree.mkdir()
    script = """
import json, os, time
forked = 0
for _ in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    forked += 1
written = 0
try:
    with open(os.path.join(os.environ["HOME"], "big"), "wb") as handle:
        for _ in range(8):
            handle.write(b"x" * (1 << 20))
            written += 1
except OSError as exc:
    error = exc.strerror
open("{output_dir}/r", "w").write(json.dumps({"forked": forked, "mb": written, "error": error}))
"""
    limits = Limits(wall_seconds=60, processes=20, file_bytes=3 * (1 << 20))
    result, output = ProcessSandbox(limits, mode="namespaces").run(
        [sys.executable, "-c", script], tree, "r"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output)
    assert 0 < report["forked"] < 20
    assert report["mb"] == 3
    assert report["error"] == "File too large"
