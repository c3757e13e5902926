"""What every commit-status channel shares: the status itself, checks on the values that reach
a URL, and the one HTTP call.

A status payload (what the tracking stage stores in the outbox):

    {"repository": "owner/name" (GitLab: "group/sub/project"), "sha": 40 or 64 hex digits,
     "state": "pending" | "running" | "success" | "failure" | "canceled",
     "context": "retrain/<pipeline>", "description": str, "target_url": str | None}

Each forge maps the state onto its own words and builds its own request; sender values (the
repository path, the commit) are checked here before they become part of a URL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from trigger_service.errors import PermanentError
from trigger_service.outbox.http import call

STATES = ("pending", "running", "success", "failure", "canceled")
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
MAX_DESCRIPTION = 140  # GitHub's limit; the others allow more


@dataclass(frozen=True)
class CommitStatus:
    repository: str
    sha: str
    state: str
    context: str
    description: str
    target_url: str | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CommitStatus:
        try:
            status = cls(
                repository=str(payload["repository"]),
                sha=str(payload["sha"]),
                state=str(payload["state"]),
                context=str(payload["context"]),
                description=str(payload.get("description") or ""),
                target_url=payload.get("target_url") or None,
            )
        except KeyError as exc:
            raise PermanentError(f"commit status without {exc.args[0]}") from exc
        if status.state not in STATES:
            raise PermanentError(f"unknown commit status state {status.state!r}")
        if not SHA.fullmatch(status.sha):
            raise PermanentError(f"not a full commit id: {status.sha[:80]!r}")
        return status

    def payload(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "sha": self.sha,
            "state": self.state,
            "context": self.context,
            "description": self.description,
            "target_url": self.target_url,
        }


def short(text: str, limit: int = MAX_DESCRIPTION) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def repository_path(path: str, *, nested: bool) -> list[str]:
    """The repository path's segments, or PermanentError: `owner/name` (GitHub, Gitea) or
    `group/.../project` (GitLab, nested). No `.`/`..`, no empty segment, no URL syntax."""
    parts = path.strip("/").split("/")
    if (nested and len(parts) < 2) or (not nested and len(parts) != 2):
        raise PermanentError(f"not a repository path: {path[:200]!r}")
    for part in parts:
        if not SEGMENT.fullmatch(part):  # the first character excludes "." and ".."
            raise PermanentError(f"not a repository path: {path[:200]!r}")
    return parts


def web_host(api_url: str) -> str:
    """The host people clone from, for an API base URL: api.github.com -> github.com; GitHub
    Enterprise, GitLab and Gitea serve their API on the web host itself."""
    host = (urlsplit(api_url).hostname or "").lower()
    return host.removeprefix("api.")


class StatusChannel:
    """One forge's commit-status API. Subclasses set `name` and build the request."""

    name: ClassVar[str]
    nested: ClassVar[bool] = False

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._clock = clock

    @property
    def web_host(self) -> str:
        return web_host(self.api_url)

    def deliver(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        status = CommitStatus.from_payload(payload)
        method, url, headers, body = self.request(status)
        response = call(
            self._client,
            method,
            url,
            what=f"{self.name} status {status.context}={status.state} on {status.sha[:12]}",
            clock=self._clock,
            accept=self.already_set,
            headers=headers,
            json=body,
        )
        answer = _json(response)
        return {"http_status": response.status_code, "id": answer.get("id")}

    def request(self, status: CommitStatus) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    def already_set(self, response: httpx.Response) -> bool:
        """Whether a refusal means the forge already shows this state (idempotent resend)."""
        return False

    def close(self) -> None:
        self._client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
