"""Running code from a pushed commit (the pipeline's compile step) where it cannot reach the
service's credentials.

A commit is untrusted: `python -m <module> compile` executes whatever the commit contains. Three
ways to run it, chosen by `TRIGGER_COMPILE_SANDBOX`:

    namespaces  (embedded default when available) a child in its own mount, PID, network, IPC
                and UTS namespaces (util-linux `unshare`): it sees no other process (its own
                /proc), has no network, sees the secret files as empty (/dev/null bound over
                them) and the service's home as an empty tmpfs, sees every filesystem read-only
                except its private work folder, and runs as `nobody` when the service is root
                (otherwise as the service's user mapped to root of a user namespace, with no
                capabilities). Environment: an allow-list only. CPU, address-space and open-file
                limits, and a wall-clock timeout that kills the whole namespace.
    plain       the same environment allow-list, limits and timeout, as the service's own user.
                What remains trusted: the child can read every file that user can (secret files
                included) and the environment of that user's other processes. Only the service
                itself is protected, by being non-dumpable (`protect_service_process`).
    kubernetes  (`backend: kfp`) a Job from the commit's own image: see versions/k8s_compile.py.

`protect_service_process()` is called once by `serve` and `worker`: with PR_SET_DUMPABLE 0, a
process of the same user cannot read /proc/<service>/environ or /proc/<service>/mem.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from trigger_service.errors import PermanentError

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4
NOBODY = 65534
MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # a compiled pipeline is a few hundred kB
Mode = Literal["auto", "namespaces", "plain"]


def protect_service_process() -> bool:
    """Make this process non-dumpable; True when it worked (Linux), False elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class Limits:
    """Limits of one sandboxed run: seconds of wall clock and CPU, bytes of address space."""

    wall_seconds: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 2 * 1024**3
    open_files: int = 256
    # namespaces mode only: processes (threads included) of the child's user, and bytes per file
    # written (SIGXFSZ beyond). A fork bomb or a huge file would otherwise reach the host.
    processes: int = 256
    file_bytes: int = MAX_OUTPUT_BYTES


@dataclass(frozen=True)
class Result:
    returncode: int
    stderr: str  # the last 4 kB


class Sandbox(Protocol):
    def run(self, command: Sequence[str], tree: Path, output_name: str) -> tuple[Result, bytes]:
        """Run `command` in a copy of `tree`; return its result and the bytes of the file it
        wrote at `$OUTPUT_DIR/output_name` (b"" if none). Raises PermanentError on timeout."""
        ...


# Runs as PID 1 of the new namespaces, as root of them, before the untrusted command: prepares
# the view of the filesystem, drops privileges and execs. Argument: one JSON object.
_INIT = r"""
import ctypes, json, os, resource, subprocess, sys
cfg = json.loads(sys.argv[1])
def mount(*args):
    subprocess.run(["mount", *args], check=True, stdout=subprocess.DEVNULL)
mount("--make-rprivate", "/")
mount("--bind", cfg["work"], cfg["work"])  # a mount point of its own: moved below
for path in cfg["hide"]:
    if os.path.isdir(path):
        mount("-t", "tmpfs", "-o", "size=4k,mode=000", "tmpfs", path)
    elif os.path.exists(path):
        mount("--bind", "/dev/null", path)
staged = []
for i, path in enumerate(cfg["keep"]):
    spot = os.path.join(cfg["work"], f".keep{i}")
    os.mkdir(spot)
    mount("--bind", path, spot)
    staged.append((spot, path))
# Shared scratch folders (/tmp, /run, ...) hold other programs' files and Unix sockets, which a
# read-only mount does not stop anyone from connecting to: each becomes an empty tmpfs. The
# work folder lies under /tmp, so it waits in the fresh /run while /tmp is masked.
stage = cfg["stage"]
if stage:
    mount("-t", "tmpfs", "-o", "size=1m,mode=755", "tmpfs", os.path.dirname(stage))
    os.mkdir(stage)
    mount("--move", cfg["work"], stage)
for path in cfg["mask"]:
    mount("-t", "tmpfs", "-o", "size=1m,mode=755", "tmpfs", path)
if stage:
    os.makedirs(cfg["work"], exist_ok=True)
    mount("--move", stage, cfg["work"])
    os.rmdir(stage)
for spot, path in staged:
    os.makedirs(path, exist_ok=True)
    mount("--move", spot, path)
points = [line.split()[1] for line in open("/proc/self/mounts")]
for point in reversed(points):
    point = point.replace("\\040", " ")
    if point != cfg["work"]:
        subprocess.run(["mount", "-o", "remount,bind,ro", point], stderr=subprocess.DEVNULL)
for kind, value in ((resource.RLIMIT_CPU, cfg["cpu"]), (resource.RLIMIT_AS, cfg["memory"]),
                    (resource.RLIMIT_NOFILE, cfg["files"]), (resource.RLIMIT_NPROC, cfg["procs"]),
                    (resource.RLIMIT_FSIZE, cfg["file_bytes"])):
    resource.setrlimit(kind, (value, value))
libc = ctypes.CDLL(None, use_errno=True)
if cfg["uid"] is not None:
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
else:
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: no capability survives the exec
libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
os.chdir(cfg["cwd"])
os.execve(cfg["command"][0], cfg["command"], cfg["env"])
"""


_ULIMITS = 'ulimit -t "$1" && ulimit -v "$2" && ulimit -n "$3" && shift 3 && exec "$@"'


@dataclass
class ProcessSandbox:
    """A child process of the service, isolated as far as this machine allows (see the module
    docstring). `hidden`: secret files (and folders) the child must not read."""

    limits: Limits = field(default_factory=Limits)
    hidden: Sequence[Path] = ()
    mode: Mode = "auto"
    _namespaces: bool | None = field(default=None, repr=False)

    def uses_namespaces(self) -> bool:
        if self.mode == "plain":
            return False
        if self._namespaces is None:
            self._namespaces = _namespaces_work()
            if not self._namespaces:
                if self.mode == "namespaces":
                    raise PermanentError(
                        "TRIGGER_COMPILE_SANDBOX=namespaces but `unshare` cannot create "
                        "namespaces here (no util-linux, or user namespaces disabled)"
                    )
                log.warning(
                    "compile sandbox: namespaces unavailable; compiling with a scrubbed "
                    "environment only (files and processes of this user stay readable)"
                )
        return self._namespaces

    def run(self, command: Sequence[str], tree: Path, output_name: str) -> tuple[Result, bytes]:
        # /tmp rather than $TMPDIR: the work folder must not lie under the home it masks.
        base = "/tmp" if os.path.isdir("/tmp") else None
        work = Path(tempfile.mkdtemp(prefix="trigger-sandbox-", dir=base))
        try:
            src, out, home = work / "src", work / "out", work / "home"
            shutil.copytree(tree, src, symlinks=True)
            out.mkdir()
            home.mkdir()
            env = {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": str(home),
                "TMPDIR": str(home),
                "PYTHONPATH": str(src),
                "PYTHONDONTWRITEBYTECODE": "1",
                "OUTPUT_DIR": str(out),
                "LANG": "C.UTF-8",
            }
            argv = [a.replace("{output_dir}", str(out)) for a in command]
            if self.uses_namespaces():
                uid = _child_uid()
                work.chmod(0o755)  # stays root's: the child writes only inside its folders
                if uid is not None:
                    for folder in (src, out, home):
                        _chown_tree(folder, uid)
                result = self._spawn(self._wrapped(argv, work, src, env, uid), None, None)
            else:
                result = self._spawn(argv, src, env)
            return result, _read_output(out, output_name)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _wrapped(
        self, argv: list[str], work: Path, src: Path, env: dict[str, str], uid: int | None
    ) -> list[str]:
        try:
            home = Path.home().resolve()
        except (KeyError, RuntimeError):  # no HOME and no passwd entry: nothing to mask
            home = Path("/")
        masked = home != Path("/") and home.is_dir() and not work.is_relative_to(home)
        mask = [str(home)] if masked else []
        # Scratch folders are masked whole. The one holding `work` (/tmp) only when /run is
        # there to stage it in (the init masks /run itself, first).
        scratch = _scratch_folders()
        holder = next((f for f in scratch if work.is_relative_to(f)), None)
        run = Path("/run")
        stage = "/run/.trigger-work" if holder not in (None, run) and run in scratch else None
        covered = [Path(m) for m in mask] + ([run] if stage else [])
        for folder in scratch:
            if (folder == holder and stage is None) or (folder == run and stage):
                continue
            if not any(folder.is_relative_to(c) for c in covered):
                mask.append(str(folder))
                covered.append(folder)
        # The interpreter may live under the masked home (pyenv): keep its prefixes visible.
        keep = sorted(
            {
                str(Path(p).resolve())
                for p in (sys.base_prefix, sys.prefix, Path(sys.executable).resolve().parent)
                if any(Path(p).resolve().is_relative_to(m) for m in mask)
            }
        )
        config = {
            "work": str(work),
            "cwd": str(src),
            "hide": _hideable(self.hidden, [work, Path(sys.prefix), Path(sys.base_prefix)]),
            "keep": _outermost(keep),
            "mask": mask,
            "stage": stage,
            "cpu": self.limits.cpu_seconds,
            "memory": self.limits.memory_bytes,
            "files": self.limits.open_files,
            "procs": self.limits.processes,
            "file_bytes": self.limits.file_bytes,
            "uid": uid,
            "command": argv,
            "env": env,
        }
        unshare = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
        unshare += ["--net", "--ipc", "--uts"]
        if os.geteuid() != 0:
            unshare += ["--user", "--map-root-user"]
        return [*unshare, sys.executable, "-I", "-S", "-c", _INIT, json.dumps(config)]

    def _spawn(self, argv: list[str], cwd: Path | None, env: dict[str, str] | None) -> Result:
        limits = self.limits
        if env is not None:  # plain mode; the namespace init sets the limits itself
            # ulimit in a shell rather than preexec_fn, which is unsafe in a threaded service.
            argv = [
                "/bin/sh", "-c", _ULIMITS, "sh", str(limits.cpu_seconds),
                str(limits.memory_bytes // 1024), str(limits.open_files), *argv,
            ]  # fmt: skip
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env if env is not None else {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=errors,
                stderr=errors,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise PermanentError(f"took over {limits.wall_seconds:.0f}s") from None
            errors.seek(0, os.SEEK_END)
            errors.seek(max(0, errors.tell() - 4096))
            return Result(code, errors.read().decode("utf-8", "replace"))


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--net"]
    if os.geteuid() != 0:
        probe += ["--user", "--map-root-user"]
    try:
        done = subprocess.run([*probe, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _child_uid() -> int | None:
    """`nobody` when the service is root; None (stay the mapped user, no capabilities) else."""
    return NOBODY if os.geteuid() == 0 else None


def _chown_tree(root: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(root):
        os.lchown(folder, uid, uid)
        for name in [*dirs, *files]:
            os.lchown(os.path.join(folder, name), uid, uid)


SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run")


def _scratch_folders() -> list[Path]:
    """The shared scratch folders of this machine (resolved: /var/run is /run)."""
    found: list[Path] = []
    for name in SCRATCH:
        path = Path(name).resolve()
        if path.is_dir() and path != Path("/") and path not in found:
            found.append(path)
    return found


def _hideable(paths: Sequence[Path], needed: Sequence[Path]) -> list[str]:
    """Resolved `paths` that exist, but never one holding what the child needs (its work folder,
    the Python installation): a misconfigured folder must not break every compile."""
    hidden = []
    for path in paths:
        real = Path(path).resolve()
        if real.exists() and not any(n.resolve().is_relative_to(real) for n in needed):
            hidden.append(str(real))
    return hidden


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(paths):
        if not any(Path(path).is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def _read_output(out: Path, name: str) -> bytes:
    """The child's output file, refusing anything but a regular file of sane size: a symlink
    planted by the child would make the service read a file of its own choosing."""
    try:
        folder = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return b""
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_OUTPUT_BYTES:
            return b""
        return handle.read(MAX_OUTPUT_BYTES)
