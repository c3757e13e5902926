"""Gitea and Forgejo commit statuses.

    POST {api}/repos/{owner}/{repo}/statuses/{sha}
    Authorization: token <token>   (a token with the write:repository scope)
    {"state": "pending|success|error|failure|warning", "target_url", "description", "context"}
    201 -> the CommitStatus object. 401 no or bad token, 404 no such repository,
    422 validation error ({"message": ..., "url": ...}), 429 with Retry-After when rate limited.

API base: https://HOST/api/v1.
"""

from __future__ import annotations

from typing import Any

from trigger_service.statuses.base import CommitStatus, StatusChannel, repository_path, short

STATES = {
    "pending": "pending",
    "running": "pending",
    "success": "success",
    "failure": "failure",
    "canceled": "error",
}


class GiteaStatuses(StatusChannel):
    name = "gitea"

    def request(self, status: CommitStatus) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        owner, repo = repository_path(status.repository, nested=False)
        body: dict[str, Any] = {
            "state": STATES[status.state],
            "description": short(status.description),
            "context": status.context,
        }
        if status.target_url:
            body["target_url"] = status.target_url
        headers = {"Authorization": f"token {self._token}", "Accept": "application/json"}
        return "POST", f"{self.api_url}/repos/{owner}/{repo}/statuses/{status.sha}", headers, body
