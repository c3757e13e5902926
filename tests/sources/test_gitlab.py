"""GitLab Push Hook / Tag Push Hook, from go-gitlab's recorded payloads."""

from __future__ import annotations

from typing import Any

import pytest

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import CodeSubject, make_event_id
from trigger_service.sources.gitlab import source

from .helpers import RECEIVED, body_of, payload


def parse(data: Any, event: str = "Push Hook", **extra: str) -> CodeSubject:
    headers = {"x-gitlab-event": event, "x-gitlab-event-uuid": "uuid-1"} | extra
    events = source.parse(headers, body_of(data), RECEIVED)
    assert len(events) == 1 and isinstance(events[0].subject, CodeSubject)
    return events[0].subject


def test_push_with_more_commits_than_listed_has_unknown_paths() -> None:
    subject = parse(payload("gitlab/push.json"))  # total_commits_count 4, 2 listed
    assert subject == CodeSubject(
        repository="http://example.com/mike/diaspora.git",
        repository_name="mike/diaspora",
        ref="refs/heads/master",
        branch="master",
        tag=None,
        before="95790bf891e76fee5e1747ab589903a6a1f80f22",
        after="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        changed_paths=None,
        pusher="jsmith",
    )


def test_push_with_every_commit_listed_has_the_union_of_paths() -> None:
    data = payload("gitlab/push.json") | {"total_commits_count": 2}
    assert parse(data).changed_paths == ("CHANGELOG", "app/controller/application.rb")


def test_tag_push() -> None:
    subject = parse(payload("gitlab/tag_push.json"), event="Tag Push Hook")
    assert (subject.ref, subject.tag, subject.branch) == ("refs/tags/v1.0.0", "v1.0.0", None)
    assert (subject.created, subject.deleted) == (True, False)
    assert subject.repository == "http://example.com/jsmith/example.git"
    assert subject.changed_paths == ("CHANGELOG", "UPGRADE.md")


def test_branch_deletion() -> None:
    data = payload("gitlab/push.json") | {
        "after": "0" * 40,
        "checkout_sha": None,
        "commits": [],
        "total_commits_count": 0,
    }
    subject = parse(data)
    assert (subject.deleted, subject.branch, subject.changed_paths) == (True, "master", None)


def test_repository_url_falls_back_to_repository_section() -> None:
    data = payload("gitlab/push.json")
    del data["project"]["git_http_url"]
    data["repository"]["git_http_url"] = "https://gitlab.example/mike/diaspora.git"
    assert parse(data).repository == "https://gitlab.example/mike/diaspora.git"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"idempotency-key": "k1", "x-gitlab-event-uuid": "u1"}, "k1"),
        ({"idempotency-key": "k1", "x-gitlab-event-uuid": "u2"}, "k1"),  # a retry: same event
        ({"x-gitlab-event-uuid": "u1"}, "u1"),
    ],
)
def test_event_id_prefers_idempotency_key(headers: dict[str, str], expected: str) -> None:
    events = source.parse(
        {"x-gitlab-event": "Push Hook"} | headers, body_of(payload("gitlab/push.json")), RECEIVED
    )
    assert (events[0].id, events[0].delivery_id) == (make_event_id("gitlab", expected), expected)


def test_missing_delivery_ids_are_rejected() -> None:
    with pytest.raises(RejectedInput, match="missing Idempotency-Key and X-Gitlab-Event-UUID"):
        source.parse({"x-gitlab-event": "Push Hook"}, b"{}", RECEIVED)


@pytest.mark.parametrize("event", ["Pipeline Hook", "Merge Request Hook"])
def test_other_events_are_ignored_not_rejected(event: str) -> None:
    # GitLab disables a hook after repeated 4xx: uninteresting events must be acknowledged.
    with pytest.raises(Ignored, match=f"unsupported event type {event}"):
        source.parse({"x-gitlab-event": event}, body_of(payload("gitlab/pipeline.json")), RECEIVED)


def test_system_hook_pushes_are_pushes_and_other_system_events_are_ignored() -> None:
    push = payload("gitlab/push.json") | {"event_name": "push"}
    assert parse(push, event="System Hook") == parse(payload("gitlab/push.json"))
    tag = payload("gitlab/tag_push.json") | {"event_name": "tag_push"}
    assert parse(tag, event="System Hook").tag is not None
    for body in ({"event_name": "project_create"}, {"object_kind": "x"}, {"event_name": 3}):
        headers = {"x-gitlab-event": "System Hook", "x-gitlab-event-uuid": "u"}
        with pytest.raises((Ignored, RejectedInput)):
            source.parse(headers, body_of(body), RECEIVED)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["project"].pop("path_with_namespace"),
            "missing field project.path_with_namespace",
        ),
        (
            lambda d: d.update(total_commits_count="4"),
            "field total_commits_count must be an integer",
        ),
        (
            lambda d: d.update(total_commits_count=True),
            "field total_commits_count must be an integer",
        ),
        (lambda d: d.update(project=None, repository=None), "missing field project.git_http_url"),
    ],
)
def test_wrong_fields_are_named(mutate: Any, message: str) -> None:
    data = payload("gitlab/push.json")
    mutate(data)
    with pytest.raises(RejectedInput, match=f"^gitlab push: {message}"):
        parse(data)
