"""GitHub push webhooks: HMAC-SHA256 over the raw body, JSON or form-encoded deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import Event
from trigger_service.sources._auth import check_hmac_sha256
from trigger_service.sources._git_push import code_event, push_subject, require_header
from trigger_service.sources._json import load_object, opt, req, req_any

# GitHub's webhook docs: the push payload lists at most 2048 commits. (The 20-commit cap in the
# same docs applies to timeline events only, not to webhook deliveries.)
MAX_LISTED_COMMITS = 2048


def _payload_text(headers: Mapping[str, str], body: bytes, what: str) -> bytes | str:
    """The JSON document: the body itself, or its `payload=` field for a form delivery."""
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return body
    try:
        fields = parse_qs(body.decode("latin-1"), errors="strict")
    except ValueError as exc:  # a percent-escape that is not UTF-8
        raise RejectedInput(f"{what}: malformed form body ({exc})") from None
    values = fields.get("payload", [])
    if len(values) != 1:
        raise RejectedInput(f"{what}: form body needs exactly one payload field")
    return values[0]


class GitHubSource:
    name = "github"
    route = "/webhooks/github"
    secret_setting = "github_secret"
    max_body_setting = "git_max_body_bytes"  # GitHub caps its own payloads at 25 MB
    media_types: tuple[str, ...] = ("application/json",)
    summary = "Receive a github delivery"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        signature = headers.get("x-hub-signature-256", "")
        digest = signature.removeprefix("sha256=") if signature.startswith("sha256=") else None
        check_hmac_sha256(body, secret, digest, "github")

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        event_type = require_header(headers, "X-GitHub-Event", "github")
        if event_type == "ping":
            raise Ignored("ping")
        if event_type != "push":
            raise Ignored(f"unsupported event type {event_type}")
        what = "github push"
        delivery = require_header(headers, "X-GitHub-Delivery", what)
        payload = load_object(_payload_text(headers, body, what), what)
        repository = req_any(payload, ("repository.clone_url", "repository.html_url"), str, what)
        subject = push_subject(
            payload,
            what,
            repository=repository,
            repository_name=req(payload, "repository.full_name", str, what),
            pusher=opt(payload, "pusher.name", str, what),
            max_listed=MAX_LISTED_COMMITS,
        )
        return [code_event(self.name, delivery, subject, received_at)]


source = GitHubSource()
