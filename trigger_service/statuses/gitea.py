"""Gitea and Forgejo commit statuses.

    POST {api}/repos/{owner}/{repo}/statuses/{sha}
    Authorization: token <token>   (a token with the write:repository scope)
    {"state": "pending|success|error|failure|warning", "target_url", "description", "context"}
    201 -> the CommitStatus object. 401 no or bad token, 404 no such repository,
    422 validation error ({"message": ..., "url": ...}), 429 with Retry-After when rate limited.

API base: https://HOST/api/v1.
"""

from __future__ import annotations

from trigger_service.statuses.github import GitHubStatuses


class GiteaStatuses(GitHubStatuses):
    """Gitea's status API has GitHub's path, body and state names; only the credentials differ."""

    name = "gitea"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self._token}", "Accept": "application/json"}
