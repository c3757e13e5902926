"""Values that can reach git or the filesystem, checked before anything is stored or run.

    commit_id(value, field) -> str          40 (SHA-1) or 64 (SHA-256) hex digits, lower-cased
    branch_name(value, field) -> str        what `git check-ref-format --branch` accepts
    ref_name(value, field) -> str           a full ref (refs/heads/x, refs/tags/v1)
    version_name(value, field) -> str       a manual trigger's `version`: a commit id, a short
                                            hex id (resolved later with git), or a branch name
    inside(root, *parts) -> Path            root/parts resolved; PermanentError if it leaves root

Every value check is pure (no git process starts) and raises RejectedInput naming the field and
the reason, which the HTTP edge answers with 400. `inside` guards the worker's own paths (a
second line of defence behind the value checks), so it raises PermanentError. The branch rules
are git's own (git-check-ref-format(1)), a little stricter ("@" alone is refused); a test
compares them with the real `git check-ref-format --branch` on a table of names.
"""

from __future__ import annotations

import re
from pathlib import Path

from trigger_service.errors import PermanentError, RejectedInput

MAX_REF_BYTES = 255  # git allows longer on some file systems; no forge serves one this long
_COMMIT = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_SHORT = re.compile(r"[0-9a-fA-F]{4,63}")
# Control characters, DEL, space and the characters git reserves for revision syntax.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def _shown(value: str) -> str:
    return repr(value[:60]) + ("..." if len(value) > 60 else "")


def commit_id(value: str, field: str) -> str:
    """A full commit id (the all-zero id of a creation or deletion included)."""
    if not _COMMIT.fullmatch(value):
        raise RejectedInput(f"{field}: {_shown(value)} is not a commit id (40 or 64 hex digits)")
    return value.lower()


def _ref_problem(name: str) -> str | None:
    """Why git would refuse `name` as (the part after refs/) of a ref, or None."""
    if not name:
        return "is empty"
    if len(name.encode()) > MAX_REF_BYTES:
        return f"is longer than {MAX_REF_BYTES} bytes"
    if match := _FORBIDDEN.search(name):
        return f"contains {match.group()!r}"
    if ".." in name:
        return "contains '..'"
    if "@{" in name:
        return "contains '@{'"
    if name == "@":
        return "is '@'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "has an empty path component"
    if name.endswith("."):
        return "ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "has a component starting with '.'"
        if part.endswith(".lock"):
            return "has a component ending with '.lock'"
    return None


def branch_name(value: str, field: str) -> str:
    """A branch name as `git check-ref-format --branch` accepts it (never an option)."""
    # An option look-alike is named as such first: that is what it is trying to be.
    problem = "starts with '-'" if value.startswith("-") else _ref_problem(value)
    if problem is None and value == "HEAD":
        problem = "is HEAD"
    if problem is not None:
        raise RejectedInput(f"{field}: branch name {_shown(value)} {problem}")
    return value


def ref_name(value: str, field: str) -> str:
    """A full ref name (refs/heads/main, refs/tags/v1) as `git check-ref-format` accepts it."""
    if value.startswith("refs/heads/"):
        branch_name(value.removeprefix("refs/heads/"), field)
    problem = _ref_problem(value)
    if problem is None and not value.startswith("refs/"):
        problem = "does not start with refs/"
    if problem is not None:
        raise RejectedInput(f"{field}: ref {_shown(value)} {problem}")
    return value


def is_short_id(value: str) -> bool:
    """4 to 63 hex digits: git resolves it to one commit, or says it is ambiguous."""
    return bool(_SHORT.fullmatch(value)) and not _COMMIT.fullmatch(value)


def version_name(value: str, field: str) -> str:
    """A version a person names: a full commit id, a short one, or a branch name."""
    if _COMMIT.fullmatch(value):
        return value.lower()
    if is_short_id(value):
        return value.lower()
    return branch_name(value, field)


def inside(root: Path, *parts: str) -> Path:
    """`root / parts`, resolved; PermanentError if the result is not strictly inside `root`."""
    base = root.resolve()
    if any("\x00" in part for part in parts):
        raise PermanentError(f"path {_shown('/'.join(parts))} contains a NUL byte")
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base) or target == base:
        raise PermanentError(f"path {_shown('/'.join(parts))} leaves {base}")
    return target
