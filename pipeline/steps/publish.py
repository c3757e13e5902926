"""Publish the ONNX model as `<models_root>/<model_name>/<version>/{model.onnx,metadata.json}`.

Model servers (OVMS, Triton) serve the highest integer version folder and poll for new ones, so:
- versions only grow: the next number is one above both the existing folders and the
  `.latest_version` record, which is bumped before anything is written, so a number is never
  reused even when its folder was deleted or a publish died half-way;
- a version appears whole or not at all: files are written and fsynced in a hidden
  `.staging-...` folder (no leading digit, so servers ignore it) on the same filesystem, then
  `os.rename`d into place, never over an existing folder;
- champion/challenger: a new model replaces the served one only if its accuracy on this run's
  test set is within `champion_tolerance` of the champion's, measured the same way (ONNX);
- retention keeps the newest `keep_versions` folders; the newest (served) one is never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.steps.errors import PublishError
from pipeline.steps.evaluate import score
from pipeline.steps.preprocess import Split, load_split
from pipeline.steps.schema import LABEL, ONNX_INPUT, ONNX_OUTPUT
from pipeline.steps.verify import onnx_predict

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
RECORD_FILE = ".latest_version"
LOCK_FILE = ".publish.lock"
LIBRARIES = (
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "numpy",
    "pandas",
    "kfp",
)


@dataclass(frozen=True)
class Lineage:
    data_uri: str
    data_sha256: str
    git_commit: str = ""
    trigger_reason: str = ""
    event_ids: list[str] = field(default_factory=list)
    decision_id: str = ""
    run_id: str = ""


@dataclass(frozen=True)
class Policy:
    champion_tolerance: float = 0.01
    keep_versions: int = 5


@dataclass(frozen=True)
class Champion:
    version: int
    accuracy: float | None  # None: other features or classes, so not comparable


@dataclass(frozen=True)
class PublishResult:
    published: bool
    reason: str
    version: int | None = None
    path: str | None = None
    champion_version: int | None = None
    champion_accuracy: float | None = None
    removed_versions: list[int] = field(default_factory=list)


def parse_event_ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def versions(model_dir: Path) -> list[int]:
    """Published version numbers, ascending (staging and record files are hidden names)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def model_folder(models_root: Path, model_name: str) -> Path:
    """`models_root/model_name`, refusing a name that would leave the models root: publishing
    and pruning must never touch folders outside it."""
    if not MODEL_NAME.fullmatch(model_name):
        raise PublishError(
            f"model name {model_name[:60]!r} is not one path segment (letters, digits, '.', "
            "'_', '-', starting with a letter or digit)"
        )
    root = models_root.resolve()
    folder = (root / model_name).resolve()
    if folder.parent != root:
        raise PublishError(f"model folder {folder} is not directly under {root}")
    return models_root / model_name


def publish(
    onnx_path: Path,
    splits_dir: Path,
    models_root: Path,
    model_name: str,
    metrics: dict[str, float],
    lineage: Lineage,
    policy: Policy,
    now: datetime | None = None,
) -> PublishResult:
    """Publish unless the champion is better; raise only when publishing itself fails
    (PublishError, e.g. a model name that is not one path segment)."""
    model_dir = model_folder(models_root, model_name)
    model_dir.mkdir(parents=True, exist_ok=True)
    test = load_split(splits_dir, "test")
    with _locked(model_dir):
        champion = _champion(model_dir, test)
        challenger = metrics["accuracy"]
        if champion and _keeps_its_place(champion, challenger, policy.champion_tolerance):
            return PublishResult(
                published=False,
                reason=(
                    f"not published: challenger accuracy {challenger:.4f} < champion "
                    f"v{champion.version} {champion.accuracy:.4f} - {policy.champion_tolerance}"
                ),
                champion_version=champion.version,
                champion_accuracy=champion.accuracy,
            )
        _sweep(model_dir)
        version = _reserve_version(model_dir)
        metadata = _metadata(model_name, version, test, metrics, lineage, champion, now)
        final = _install(model_dir, version, onnx_path, metadata)
        removed = _prune(model_dir, keep=max(policy.keep_versions, 1))
    return PublishResult(
        published=True,
        reason=f"published version {version}{_versus(champion)}",
        version=version,
        path=str(final / MODEL_FILE),
        champion_version=champion.version if champion else None,
        champion_accuracy=champion.accuracy if champion else None,
        removed_versions=removed,
    )


def _keeps_its_place(champion: Champion, challenger: float, tolerance: float) -> bool:
    return champion.accuracy is not None and challenger < champion.accuracy - tolerance


def _versus(champion: Champion | None) -> str:
    if champion is None:
        return ""
    if champion.accuracy is None:
        return f" (champion v{champion.version} not comparable: other features or classes)"
    return f" (champion v{champion.version} accuracy {champion.accuracy:.4f})"


@contextlib.contextmanager
def _locked(model_dir: Path) -> Iterator[None]:
    """One publisher at a time per model (flock; advisory, also on NFS v4 volumes)."""
    with open(model_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _champion(model_dir: Path, test: Split) -> Champion | None:
    """The served (highest) version and its accuracy on this run's test set."""
    for version in reversed(versions(model_dir)):
        folder = model_dir / str(version)
        if not (folder / MODEL_FILE).is_file():
            continue
        meta = json.loads((folder / METADATA_FILE).read_text())
        if meta.get("features") != test.feature_names or meta.get("classes") != test.classes:
            return Champion(version, accuracy=None)
        predicted = onnx_predict(folder / MODEL_FILE, test.features).argmax(axis=1)
        return Champion(version, score(test.labels, predicted, len(test.classes)).accuracy)
    return None


def _sweep(model_dir: Path) -> None:
    """Remove staging and trash folders of publishes that died: we hold the lock, so none of
    them belongs to a publish in progress."""
    for leftover in model_dir.glob(".staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in model_dir.glob(".trash-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _reserve_version(model_dir: Path) -> int:
    record = model_dir / RECORD_FILE
    recorded = int(record.read_text().strip() or 0) if record.is_file() else 0
    version = max([recorded, *versions(model_dir)]) + 1
    _write_durably(model_dir / f"{RECORD_FILE}.tmp", str(version).encode())
    os.rename(model_dir / f"{RECORD_FILE}.tmp", record)
    _fsync_dir(model_dir)
    return version


def _install(model_dir: Path, version: int, onnx_path: Path, metadata: dict) -> Path:
    final = model_dir / str(version)
    staging = model_dir / f".staging-{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        copy_file(onnx_path, staging / MODEL_FILE)
        _write_durably(staging / METADATA_FILE, json.dumps(metadata, indent=2).encode())
        _fsync_dir(staging)
        if final.exists():
            raise FileExistsError(f"version folder {final} already exists")
        os.rename(staging, final)
        _fsync_dir(model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def copy_file(source: Path, dest: Path) -> None:
    """Copy and fsync, so the file's bytes are on disk before the folder is renamed."""
    with open(source, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(model_dir: Path, keep: int) -> list[int]:
    """Remove all but the newest `keep` versions; rename first so no one sees a half-deleted one."""
    removed = versions(model_dir)[:-keep]
    for version in removed:
        trash = model_dir / f".trash-{version}-{uuid.uuid4().hex[:8]}"
        os.rename(model_dir / str(version), trash)
        shutil.rmtree(trash, ignore_errors=True)
    return removed


def _metadata(
    model_name: str,
    version: int,
    test: Split,
    metrics: dict[str, float],
    lineage: Lineage,
    champion: Champion | None,
    now: datetime | None,
) -> dict:
    created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return {
        "model_name": model_name,
        "version": version,
        "created": created,
        "format": "onnx",
        "input": {"name": ONNX_INPUT, "dtype": "float32", "shape": [None, len(test.feature_names)]},
        "output": {"name": ONNX_OUTPUT, "dtype": "float32", "shape": [None, len(test.classes)]},
        "features": test.feature_names,
        "label": LABEL,
        "classes": test.classes,
        "metrics": {**metrics, "test_rows": len(test.labels)},
        "champion": asdict(champion) if champion else None,
        "data": {"uri": lineage.data_uri, "sha256": lineage.data_sha256},
        "lineage": {k: v for k, v in asdict(lineage).items() if not k.startswith("data_")},
        "libraries": _library_versions(),
    }


def _library_versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
