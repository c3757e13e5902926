"""GitLab push and tag-push webhooks: a shared token in X-Gitlab-Token.

Project hooks say what they carry in X-Gitlab-Event; instance-wide System Hooks all say
`System Hook` and name the event in the body's `event_name` (push and tag_push are read as the
project hooks' pushes; every other system event is ignored with its name).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import Event
from trigger_service.sources._auth import check_token
from trigger_service.sources._git_push import code_event, push_subject, require_header
from trigger_service.sources._json import load_object, opt, req, req_any

# X-Gitlab-Event -> the name used in messages.
EVENTS: dict[str, str] = {"Push Hook": "gitlab push", "Tag Push Hook": "gitlab tag push"}
# A System Hook's event_name -> the name used in messages.
SYSTEM_EVENTS: dict[str, str] = {"push": "gitlab push", "tag_push": "gitlab tag push"}


class GitLabSource:
    name = "gitlab"
    route = "/webhooks/gitlab"
    secret_setting = "gitlab_token"
    max_body_setting = "git_max_body_bytes"
    media_types: tuple[str, ...] = ("application/json",)
    summary = "Receive a gitlab delivery"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        check_token(headers.get("x-gitlab-token"), secret, "gitlab")

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        event_type = require_header(headers, "X-Gitlab-Event", "gitlab")
        what = EVENTS.get(event_type)
        payload = None
        if event_type == "System Hook":
            payload = load_object(body, "gitlab system hook")
            event_name = opt(payload, "event_name", str, "gitlab system hook") or ""
            what = SYSTEM_EVENTS.get(event_name)
            if what is None:
                raise Ignored(f"system hook event {event_name or '(none)'!r:.60}")
        if what is None:
            # Ignored answers 2xx: GitLab disables a hook after repeated 4xx answers.
            raise Ignored(f"unsupported event type {event_type}")
        # Idempotency-Key stays the same across GitLab's retries of one delivery.
        delivery = (
            headers.get("idempotency-key", "").strip()
            or headers.get("x-gitlab-event-uuid", "").strip()
        )
        if not delivery:
            raise RejectedInput(f"{what}: missing Idempotency-Key and X-Gitlab-Event-UUID headers")
        payload = payload if payload is not None else load_object(body, what)
        subject = push_subject(
            payload,
            what,
            repository=req_any(
                payload, ("project.git_http_url", "repository.git_http_url"), str, what
            ),
            repository_name=req(payload, "project.path_with_namespace", str, what),
            pusher=opt(payload, "user_username", str, what),
            total_commits=opt(payload, "total_commits_count", int, what),
        )
        return [code_event(self.name, delivery, subject, received_at)]


source = GitLabSource()
