"""Gitea push webhooks: the documented example and the current payload shape."""

from __future__ import annotations

from typing import Any

import pytest

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import CodeSubject, make_event_id
from trigger_service.sources.gitea import source

from .helpers import PAYLOADS, RECEIVED, SECRET, body_of, hmac_hex, payload

DELIVERY = "f6266f16-1bf3-46a5-9ea4-602e06ead473"


def parse(body: bytes, event: str = "push") -> CodeSubject:
    events = source.parse({"x-gitea-event": event, "x-gitea-delivery": DELIVERY}, body, RECEIVED)
    assert len(events) == 1 and isinstance(events[0].subject, CodeSubject)
    assert events[0].id == make_event_id("gitea", DELIVERY)
    return events[0].subject


def test_documented_example_verifies_and_parses() -> None:
    body = (PAYLOADS / "gitea/push-docs.json").read_bytes()
    source.verify({"x-gitea-signature": hmac_hex(body)}, body, SECRET)
    assert parse(body) == CodeSubject(
        repository="http://localhost:3000/gitea/webhooks.git",
        repository_name="gitea/webhooks",
        ref="refs/heads/develop",
        branch="develop",
        tag=None,
        before="28e1879d029cb852e4844d9c718537df08844e03",
        after="bffeb74224043ba2feb48d137756c8a9331c449a",
        changed_paths=None,  # its commits carry no file lists
        pusher="gitea",
    )


@pytest.mark.parametrize(
    ("total_commits", "expected"),
    [
        (2, ("docs/notes.md", "notebooks/old.ipynb", "pipeline/params.yaml", "pipeline/train.py")),
        (
            None,
            ("docs/notes.md", "notebooks/old.ipynb", "pipeline/params.yaml", "pipeline/train.py"),
        ),
        (7, None),  # Gitea lists only the last few commits of a long push
    ],
)
def test_changed_paths(total_commits: int | None, expected: Any) -> None:
    data = payload("gitea/push-main.json") | {"total_commits": total_commits}
    subject = parse(body_of(data))
    assert (subject.branch, subject.changed_paths) == ("main", expected)


def test_pusher_username_when_login_missing() -> None:
    data = payload("gitea/push-main.json")
    del data["pusher"]["login"]
    assert parse(body_of(data)).pusher == "gitea"


@pytest.mark.parametrize("event", ["create", "delete", "pull_request"])
def test_other_events_are_ignored(event: str) -> None:
    with pytest.raises(Ignored, match=f"unsupported event type {event}"):
        parse(b"{}", event=event)


def test_missing_delivery_is_rejected() -> None:
    with pytest.raises(RejectedInput, match="gitea push: missing X-Gitea-Delivery header"):
        source.parse({"x-gitea-event": "push"}, b"{}", RECEIVED)


def test_tampered_body_fails_verification_after_parse_would_succeed() -> None:
    body = (PAYLOADS / "gitea/push-main.json").read_bytes()
    signature = hmac_hex(body)
    tampered = body.replace(b"refs/heads/main", b"refs/heads/prod")
    assert parse(tampered).branch == "prod"  # parse alone would accept it: verify must run first
    with pytest.raises(RejectedInput, match="signature does not match"):
        source.verify({"x-gitea-signature": signature}, tampered, SECRET)


@pytest.mark.parametrize(
    ("before", "after"),
    [("3" * 40, "3" * 40), ("0" * 40, "0" * 40)],
    ids=["before-equals-after", "zero-ids"],
)
def test_test_deliveries_are_ignored_as_such(before: str, after: str) -> None:
    data = payload("gitea/push-main.json") | {"before": before, "after": after}
    with pytest.raises(Ignored, match=r"^test delivery$"):
        parse(body_of(data))


@pytest.mark.parametrize("forge", ["Forgejo", "Gogs"])
def test_forgejo_and_gogs_headers(forge: str) -> None:
    body = body_of(payload("gitea/push-main.json"))
    prefix = f"x-{forge.lower()}-"
    source.verify({prefix + "signature": hmac_hex(body)}, body, SECRET)
    headers = {prefix + "event": "push", prefix + "delivery": DELIVERY}
    (event,) = source.parse(headers, body, RECEIVED)
    assert event.id == make_event_id("gitea", DELIVERY)
