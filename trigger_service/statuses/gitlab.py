"""GitLab commit statuses (GitLab.com and self-managed).

    POST {api}/projects/{id}/statuses/{sha}       id: the URL-encoded path, group%2Fproject
    PRIVATE-TOKEN: <token>   (a project, group or personal access token with the api scope,
                              role Developer or higher)
    {"state": "pending|running|success|failed|canceled", "name": context, "description",
     "target_url"}
    201 -> the status object. 400 {"message": {"target_url": [...]}} for a target_url longer
    than 255 characters or not http(s) (such a link is left out: a status without its link
    beats no status), 401 unauthorized, 404 project or commit not found, 400 with
    "Cannot transition status via :X from :Y" when the status already is in that state (GitLab
    refuses a repeat, so a resend after a crash counts as done), 429 with Retry-After and
    RateLimit-Reset.

API base: https://gitlab.com/api/v4 or https://HOST/api/v4.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from trigger_service.statuses.base import CommitStatus, StatusChannel, repository_path, short

MAX_TARGET_URL = 255
STATES = {
    "pending": "pending",
    "running": "running",
    "success": "success",
    "failure": "failed",
    "canceled": "canceled",
}


class GitLabStatuses(StatusChannel):
    name = "gitlab"
    nested = True

    def request(self, status: CommitStatus) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        project = quote("/".join(repository_path(status.repository, nested=True)), safe="")
        body: dict[str, Any] = {
            "state": STATES[status.state],
            "name": status.context,
            "description": short(status.description, 255),
        }
        if status.target_url and _linkable(status.target_url):
            body["target_url"] = status.target_url
        headers = {"PRIVATE-TOKEN": self._token, "Accept": "application/json"}
        return "POST", f"{self.api_url}/projects/{project}/statuses/{status.sha}", headers, body

    def already_set(self, response: httpx.Response) -> bool:
        return response.status_code == 400 and "Cannot transition status" in response.text


def _linkable(url: str) -> bool:
    """What GitLab's GenericCommitStatus accepts as target_url: http(s), at most 255 chars."""
    return len(url) <= MAX_TARGET_URL and urlsplit(url).scheme in ("http", "https")
