"""Commit statuses on the forge a push came from: one channel per forge, the same verb each.

    FORGES[name](api_url, token).deliver(payload)   POST the status (outbox channel)
    status_channels(settings) -> {name: channel}    only the forges that have a token
    locate(channels, source, subject) -> (forge, repository path) | None

A push names its forge by the route it came in on (`github`, `gitlab`, `gitea`). An event of
the git poll (source `poll`) names only its repository URL: its forge is the configured one
whose API host serves that URL's host (api.github.com for github.com; GitHub Enterprise,
GitLab and Gitea on the same host).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trigger_service.errors import PermanentError
from trigger_service.outbox.http import header_token
from trigger_service.statuses.base import CommitStatus, StatusChannel, repository_path
from trigger_service.statuses.gitea import GiteaStatuses
from trigger_service.statuses.github import GitHubStatuses
from trigger_service.statuses.gitlab import GitLabStatuses

if TYPE_CHECKING:
    from trigger_service.settings import Settings

FORGES: dict[str, type[StatusChannel]] = {
    "github": GitHubStatuses,
    "gitlab": GitLabStatuses,
    "gitea": GiteaStatuses,
}
SCP_LIKE = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>[^:]+)$")


def status_channels(settings: Settings) -> dict[str, StatusChannel]:
    """A channel for each forge with an API token; statuses are off for the others."""
    channels: dict[str, StatusChannel] = {}
    for name, channel in FORGES.items():
        env = f"TRIGGER_{name.upper()}_API"
        secret = getattr(settings, f"{name}_api_token")
        token = header_token(secret.get_secret_value() if secret else None, f"{env}_TOKEN")
        url = getattr(settings, f"{name}_api_url")
        if token is None:
            continue
        if not url:
            raise ValueError(f"{env}_TOKEN is set but {env}_URL is not: where is the {name} API?")
        channels[name] = channel(url, token)
    return channels


def locate(
    channels: dict[str, StatusChannel], source: str, subject: dict[str, Any]
) -> tuple[str, str] | None:
    """Which configured forge and repository path a code event's commit lives on, or None."""
    channel = channels.get(source)
    if channel is not None:
        path = str(subject.get("repository_name") or "")
        return (source, path) if _valid(channel, path) else None
    host, path = _split_url(str(subject.get("repository") or ""))
    for name, candidate in channels.items():
        if host and host == candidate.web_host and _valid(candidate, path):
            return name, path
    return None


def _split_url(url: str) -> tuple[str, str]:
    scp = SCP_LIKE.match(url)
    if scp:
        host, path = scp["host"], scp["path"]
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git"):
            return "", ""
        host, path = parts.hostname or "", parts.path
    return host.lower(), path.strip("/").removesuffix(".git")


def _valid(channel: StatusChannel, path: str) -> bool:
    try:
        repository_path(path, nested=channel.nested)
    except PermanentError:
        return False
    return True


__all__ = ["FORGES", "CommitStatus", "StatusChannel", "locate", "status_channels"]
