"""A forge's push payload -> CodeSubject, shared by github, gitlab and gitea.

All three name the same things the same way (ref, before, after, commits[].added/modified/
removed); they differ only in where the repository and pusher live and in how they say the
commit list was cut short, which the caller passes in.

The payload only says "look now": its `after` and file lists are hints shown in explanations,
and the worker asks git for the branch head. Still, every value that could reach git is checked
here, before anything is stored: `before`/`after` must be commit ids and `ref` a valid ref name
(versions.refs), so `--upload-pack=...`, `../` or a NUL byte is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trigger_service.errors import RejectedInput
from trigger_service.events import CodeSubject, Event, EventKind, make_event_id
from trigger_service.sources._json import opt, req, str_list
from trigger_service.versions.refs import commit_id, ref_name

_FILE_LISTS = ("added", "modified", "removed")


def is_zero_sha(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def changed_paths(
    commits: list[Any] | None, *, truncated: bool, what: str
) -> tuple[str, ...] | None:
    """Sorted union of every commit's file lists, or None when the sender did not tell us all.

    None (unknown) when: no commit list, a list cut short, or a commit with no file lists
    (senders omit them for some commits, and one unknown commit makes the union unknown).
    """
    if not commits or truncated:
        return None
    paths: set[str] = set()
    for index, commit in enumerate(commits):
        if not isinstance(commit, dict):
            raise RejectedInput(f"{what}: commits[{index}] is not an object")
        files = [path for name in _FILE_LISTS for path in str_list(commit, name, what)]
        if not files:
            return None
        paths.update(files)
    return tuple(sorted(paths))


def push_subject(
    payload: Mapping[str, Any],
    what: str,
    *,
    repository: str,
    repository_name: str,
    pusher: str | None,
    total_commits: int | None = None,
    max_listed: int | None = None,
) -> CodeSubject:
    """`total_commits` is the sender's count of pushed commits, when it gives one;
    `max_listed` the most commits it lists, when it caps the list without saying so."""
    ref = ref_name(req(payload, "ref", str, what), f"{what}: field ref")
    before = commit_id(req(payload, "before", str, what), f"{what}: field before")
    after = commit_id(req(payload, "after", str, what), f"{what}: field after")
    deleted = bool(opt(payload, "deleted", bool, what)) or is_zero_sha(after)
    created = bool(opt(payload, "created", bool, what)) or is_zero_sha(before)
    commits = opt(payload, "commits", list, what)
    listed = len(commits or ())
    truncated = (total_commits is not None and total_commits > listed) or (
        max_listed is not None and listed >= max_listed
    )
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
    return CodeSubject(
        repository=repository,
        repository_name=repository_name,
        ref=ref,
        branch=branch,
        tag=tag,
        before=before,
        after=after,
        deleted=deleted,
        created=created,
        # A deletion pushes no commits: what changed is unknown, not "nothing".
        changed_paths=None if deleted else changed_paths(commits, truncated=truncated, what=what),
        pusher=pusher,
    )


def code_event(source: str, delivery: str, subject: CodeSubject, received_at: datetime) -> Event:
    return Event(
        id=make_event_id(source, delivery),
        kind=EventKind.CODE,
        source=source,
        subject=subject,
        received_at=received_at,
        delivery_id=delivery,
    )


def require_header(headers: Mapping[str, str], name: str, what: str) -> str:
    """A header the sender always sets; `name` is given as documented (case kept for messages)."""
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise RejectedInput(f"{what}: missing {name} header")
    return value
