"""GitHub (and GitHub Enterprise Server) commit statuses.

    POST {api}/repos/{owner}/{repo}/statuses/{sha}
    Authorization: Bearer <token>   (classic: repo:status; fine-grained: Commit statuses: write)
    {"state": "pending|success|failure|error", "target_url", "description", "context"}
    201 -> the status object. 401 bad credentials, 404 no such repository (or no access),
    422 validation failed (e.g. no commit with that sha), 403/429 rate limits with
    x-ratelimit-remaining / x-ratelimit-reset or retry-after.

API base: https://api.github.com; GitHub Enterprise Server: https://HOST/api/v3.
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


class GitHubStatuses(StatusChannel):
    name = "github"

    def request(self, status: CommitStatus) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        owner, repo = repository_path(status.repository, nested=False)
        body: dict[str, Any] = {
            "state": STATES[status.state],
            "description": short(status.description),
            "context": status.context,
        }
        if status.target_url:
            body["target_url"] = status.target_url
        url = f"{self.api_url}/repos/{owner}/{repo}/statuses/{status.sha}"
        return "POST", url, self.headers(), body

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
