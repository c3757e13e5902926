"""GitHub push deliveries, from real payloads GitHub sent (see fixtures/payloads/github)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import CodeSubject, EventKind, make_event_id
from trigger_service.sources.github import MAX_LISTED_COMMITS, source

from .helpers import RECEIVED, body_of, payload

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
ZERO = "0" * 40


def headers(event: str = "push", delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict:
    return {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "content-type": "application/json",
    }


def parse_one(data: Any, **kwargs: str) -> CodeSubject:
    events = source.parse(headers(**kwargs), body_of(data), RECEIVED)
    assert len(events) == 1
    assert isinstance(events[0].subject, CodeSubject)
    return events[0].subject


def test_branch_created_push() -> None:
    events = source.parse(
        headers(delivery="d-1"), body_of(payload("github/push-branch-created.json")), RECEIVED
    )
    assert [(e.id, e.kind, e.source, e.delivery_id, e.received_at) for e in events] == [
        (make_event_id("github", "d-1"), EventKind.CODE, "github", "d-1", RECEIVED)
    ]
    assert events[0].subject == CodeSubject(
        repository="https://github.com/Codertocat/Hello-World.git",
        repository_name="Codertocat/Hello-World",
        ref="refs/heads/master",
        branch="master",
        tag=None,
        before=ZERO,
        after=SHA,
        deleted=False,
        created=True,
        changed_paths=("README.md",),
        pusher="Codertocat",
    )


@pytest.mark.parametrize(
    ("fixture", "ref", "deleted", "created"),
    [
        ("push-tag-created.json", "refs/tags/simple-tag", False, True),
        ("push-tag-deleted.json", "refs/tags/simple-tag", True, False),
    ],
)
def test_tag_pushes(fixture: str, ref: str, deleted: bool, created: bool) -> None:
    subject = parse_one(payload(f"github/{fixture}"))
    assert (subject.ref, subject.tag, subject.branch) == (ref, "simple-tag", None)
    assert (subject.deleted, subject.created) == (deleted, created)
    assert subject.changed_paths is None  # no commits listed: unknown, not "nothing changed"


@pytest.mark.parametrize("flag", [True, False])
def test_branch_deletion(flag: bool) -> None:
    data = payload("github/push-tag-deleted.json") | {"ref": "refs/heads/feature/x"}
    data["deleted"] = flag  # all-zeros `after` means deleted even without the flag
    subject = parse_one(data)
    assert (subject.branch, subject.tag, subject.deleted, subject.after) == (
        "feature/x",
        None,
        True,
        ZERO,
    )
    assert subject.changed_paths is None


def _push(commits: Any) -> dict[str, Any]:
    data = payload("github/push-branch-created.json")
    data.update(created=False, before="a" * 40, commits=commits)
    return data


def _commit(added: Any = (), modified: Any = (), removed: Any = ()) -> dict[str, Any]:
    return {"id": "c", "added": list(added), "modified": list(modified), "removed": list(removed)}


@pytest.mark.parametrize(
    ("commits", "expected"),
    [
        (
            [_commit(["b.py"], ["a.py"]), _commit(modified=["a.py"], removed=["z/old.txt"])],
            ("a.py", "b.py", "z/old.txt"),
        ),
        ([_commit(["x"]), _commit()], None),  # one commit without file lists: unknown
        ([{"id": "c"}], None),  # lists absent altogether
        ([], None),
        (None, None),
        ([_commit(["f"])] * MAX_LISTED_COMMITS, None),  # GitHub's cap: the list may be cut
        ([_commit(["f"])] * (MAX_LISTED_COMMITS - 1), ("f",)),
    ],
)
def test_changed_paths(commits: Any, expected: tuple[str, ...] | None) -> None:
    assert parse_one(_push(commits)).changed_paths == expected


def test_repository_falls_back_to_html_url() -> None:
    data = payload("github/push-branch-created.json")
    del data["repository"]["clone_url"]
    assert parse_one(data).repository == "https://github.com/Codertocat/Hello-World"


def test_form_encoded_delivery_is_the_same_event() -> None:
    raw = body_of(payload("github/push-branch-created.json"))
    form = urlencode({"payload": raw.decode()}).encode()
    form_headers = headers() | {"content-type": "application/x-www-form-urlencoded"}
    assert source.parse(form_headers, form, RECEIVED) == source.parse(headers(), raw, RECEIVED)


def test_same_delivery_same_id_and_redelivery_detection() -> None:
    raw = body_of(payload("github/push-branch-created.json"))
    first = source.parse(headers(delivery="a"), raw, RECEIVED)
    again = source.parse(headers(delivery="a"), raw, RECEIVED)
    other = source.parse(headers(delivery="b"), raw, RECEIVED)
    assert first[0].id == again[0].id != other[0].id


@pytest.mark.parametrize(
    ("event", "fixture", "reason"),
    [
        ("ping", "ping.json", "ping"),
        ("create", "create-tag.json", "unsupported event type create"),
        ("pull_request", "ping.json", "unsupported event type pull_request"),
    ],
)
def test_ignored_events(event: str, fixture: str, reason: str) -> None:
    with pytest.raises(Ignored) as caught:
        source.parse(headers(event=event), body_of(payload(f"github/{fixture}")), RECEIVED)
    assert str(caught.value) == reason


FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("extra_headers", "body", "message"),
    [
        ({}, b"{not json", "github push: malformed JSON"),
        ({}, b"[1, 2]", "github push: expected a JSON object, got list"),
        ({}, b"\xff\xfe\xfd", "github push: malformed JSON"),
        ({}, b'{"ref": NaN}', "github push: malformed JSON"),
        ({}, b"[" * 100_000, "github push: "),
        ({}, b"{}", "github push: missing field repository.clone_url or repository.html_url"),
        (FORM, b"payload=%7B%7D&payload=%7B%7D", "github push: form body needs exactly one"),
        (FORM, b"other=1", "github push: form body needs exactly one payload field"),
        (FORM, b"payload=%ff", "github push: malformed form body"),
        (FORM, b"payload=%7B", "github push: malformed JSON"),
        ({"x-github-delivery": ""}, b"{}", "github push: missing X-GitHub-Delivery header"),
        ({"x-github-event": ""}, b"{}", "github: missing X-GitHub-Event header"),
    ],
)
def test_malformed_deliveries(extra_headers: dict, body: bytes, message: str) -> None:
    with pytest.raises(RejectedInput) as caught:
        source.parse(headers() | extra_headers, body, RECEIVED)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("repository", "full_name"), None, "github push: missing field repository.full_name"),
        (("repository",), "x", "github push: repository is not an object"),
        (("commits",), {"a": 1}, "github push: field commits must be a list"),
        (("commits",), ["x"], "github push: commits[0] is not an object"),
        (("commits",), [{"added": [1]}], "github push: field added must be a list of strings"),
        (("after",), "", "github push: missing field after"),
        (("before",), None, "github push: missing field before"),
        (("ref",), 5, "github push: field ref must be a string"),
        (("after",), "\ud800", "github push: field after is not valid Unicode"),
        (("deleted",), "yes", "github push: field deleted must be a boolean"),
    ],
)
def test_wrong_fields_are_named(path: tuple[str, ...], value: Any, message: str) -> None:
    data = payload("github/push-branch-created.json")
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(RejectedInput) as caught:
        source.parse(headers(), body_of(data), RECEIVED)
    assert str(caught.value) == message
