"""Promote a published version on the models volume: make it the one the model server serves.

Model servers (OVMS, Triton, KServe reading the PVC) serve the highest version folder, so
promoting version N (a roll-back, or forward again) retires every higher version by renaming it
to a hidden `.retired-<V>-<random>` folder (no leading digit: servers ignore it; never deleted,
so promoting V later brings it back) and restores N first if it was retired. It runs under the
publishers' lock (`<model>/.publish.lock`), with renames and fsyncs as publishing does, so a
publish never interleaves. Version numbers still only grow: the next publish takes a number
above every version ever published (`.latest_version`). The roll-out the model-server settings
name (none, poll, kserve) runs afterwards, as after a publish.

    promote_on_volume(models_root, model, version) -> VolumePromotion
    raises VersionNotFound, ModelsRootReadOnly, RejectedInput (a bad name or number)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trigger_service.errors import RejectedInput, TriggerError

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_VERSION = 2**31 - 1
LOCK_FILE = ".publish.lock"  # the same lock pipeline/steps/publish.py takes


class VersionNotFound(TriggerError):
    """No such model, or no such version (published, or retired by an earlier promotion)."""


class ModelsRootReadOnly(TriggerError):
    """The models root is mounted read-only here: promoting needs it read-write."""


@dataclass(frozen=True)
class VolumePromotion:
    model: str
    version: int
    restored: bool  # it had been retired by an earlier promotion and is back
    retired: list[int] = field(default_factory=list)  # versions above it, now hidden


def check_name(model: str, version: int) -> None:
    if not MODEL_NAME.fullmatch(model):
        raise RejectedInput(f"model: not a model name: {model[:100]!r}")
    if not 0 < version <= MAX_VERSION:
        raise RejectedInput(f"version: must be between 1 and {MAX_VERSION}")


def versions(model_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def promote_on_volume(models_root: Path, model: str, version: int) -> VolumePromotion:
    check_name(model, version)
    model_dir = models_root / model
    if not model_dir.is_dir():
        raise VersionNotFound(f"no model {model} under the models root")
    with _locked(model_dir):
        target = model_dir / str(version)
        restored = False
        if not target.is_dir():
            retired = sorted(model_dir.glob(f".retired-{version}-*"))
            if not retired:
                raise VersionNotFound(f"{model} has no version {version}")
            _rename(retired[-1], target)
            restored = True
        above = [v for v in versions(model_dir) if v > version]
        for higher in above:
            hidden = model_dir / f".retired-{higher}-{uuid.uuid4().hex[:8]}"
            _rename(model_dir / str(higher), hidden)
        _fsync_dir(model_dir)
    return VolumePromotion(model, version, restored, above)


@contextlib.contextmanager
def _locked(model_dir: Path) -> Iterator[None]:
    try:
        handle = open(model_dir / LOCK_FILE, "a")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise _read_only(model_dir, exc) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rename(source: Path, dest: Path) -> None:
    try:
        os.rename(source, dest)
    except OSError as exc:
        raise _read_only(source.parent, exc) from exc


def _read_only(where: Path, exc: OSError) -> TriggerError:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ModelsRootReadOnly(
            f"cannot change {where}: {exc.strerror}; promoting needs the models root mounted "
            "read-write in this pod"
        )
    return TriggerError(f"cannot change {where}: {exc.strerror}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
