"""Gitea, Forgejo and Gogs push webhooks: the signature header is the bare hex HMAC-SHA256 of the
raw body. Forgejo sends X-Forgejo-* beside X-Gitea-*; Gogs (and old Gitea) X-Gogs-*.

The "Test Delivery" button sends a push that moves nothing (before == after, or both all-zero
ids in current Gitea): answered 200 `ignored: test delivery`, as GitHub's `ping` is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from trigger_service.errors import Ignored
from trigger_service.events import Event
from trigger_service.sources._auth import check_hmac_sha256
from trigger_service.sources._git_push import code_event, push_subject, require_header
from trigger_service.sources._json import load_object, opt, req, req_any

FORGES = ("Gitea", "Forgejo", "Gogs")  # header prefixes, in the order they are read


def _header(headers: Mapping[str, str], suffix: str) -> str | None:
    for forge in FORGES:
        value = headers.get(f"x-{forge.lower()}-{suffix}")
        if value:
            return value
    return None


class GiteaSource:
    name = "gitea"
    route = "/webhooks/gitea"
    secret_setting = "gitea_secret"
    max_body_setting = "git_max_body_bytes"
    media_types: tuple[str, ...] = ("application/json",)
    summary = "Receive a gitea delivery"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        check_hmac_sha256(body, secret, _header(headers, "signature"), "gitea")

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        event_type = _header(headers, "event") or require_header(headers, "X-Gitea-Event", "gitea")
        if event_type != "push":
            raise Ignored(f"unsupported event type {event_type}")
        what = "gitea push"
        delivery = _header(headers, "delivery") or require_header(headers, "X-Gitea-Delivery", what)
        payload = load_object(body, what)
        subject = push_subject(
            payload,
            what,
            repository=req_any(payload, ("repository.clone_url", "repository.html_url"), str, what),
            repository_name=req(payload, "repository.full_name", str, what),
            pusher=opt(payload, "pusher.login", str, what)
            or opt(payload, "pusher.username", str, what),
            # Gitea lists only the last few commits (UI.FEED_MAX_COMMIT_NUM) and counts them all.
            total_commits=opt(payload, "total_commits", int, what),
        )
        if subject.before == subject.after:
            raise Ignored("test delivery")
        return [code_event(self.name, delivery, subject, received_at)]


source = GiteaSource()
