"""HTTP doubles of the commit-status APIs of GitHub, GitLab and Gitea: real HTTP servers on
loopback, faithful to the documented requests, answers and errors.

    with ForgeDouble("github", token="t") as forge:      # forge.api_url -> settings
        forge.add_commit("team/songs", sha)
        ... forge.posted                                  # every accepted status, in order
        forge.fail_next(2, 503)                           # an outage of two requests
        forge.rate_limit(reset_in=2)                      # GitHub's primary rate limit (403)
        forge.down() / forge.up()                         # connection refused, then back

What each double checks, as its forge documents it:
- GitHub  POST /repos/{owner}/{repo}/statuses/{sha} (GHE: under /api/v3), `Authorization:
  Bearer|token`: 401 {"message": "Bad credentials"}, 404 {"message": "Not Found"} for an
  unknown repository, 422 {"message": "Validation Failed", "errors": [...]} for an unknown
  commit or state, 201 with the status object; 403 + x-ratelimit-remaining: 0 +
  x-ratelimit-reset (epoch) for the primary rate limit, 429 + retry-after for the secondary.
- GitLab  POST /api/v4/projects/{id or url-encoded path}/statuses/{sha}, `PRIVATE-TOKEN`:
  401 {"message": "401 Unauthorized"}, 404 {"message": "404 Project Not Found"} / "404 Commit
  Not Found", 400 {"error": "state does not have a valid value"}, 400 "Cannot transition
  status via :enqueue from :pending" when the named status already is in that state, 400
  {"message": {"target_url": [...]}} for a target_url longer than 255 characters or not http(s)
  (GenericCommitStatus validates it: addressable_url, length maximum 255), 201 with the status
  object; 429 + Retry-After + RateLimit-Reset.
- Gitea   POST /api/v1/repos/{owner}/{repo}/statuses/{sha}, `Authorization: token|Bearer`:
  401 {"message": "token is required"}, 404 {"message": "The target couldn't be found."},
  422 {"message": "..."} for a bad state, 201 with the CommitStatus object.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tests.support.json_double import serve_json, stop
from tests.support.server import free_port

STATES = {
    "github": {"pending", "success", "failure", "error"},
    "gitea": {"pending", "success", "failure", "error", "warning"},
    "gitlab": {"pending", "running", "success", "failed", "canceled", "skipped"},
}
ROUTES = {
    "github": re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/statuses/(?P<sha>[^/]+)$"),
    "gitea": re.compile(
        r"^/api/v1/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/statuses/(?P<sha>[^/]+)$"
    ),
    "gitlab": re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/statuses/(?P<sha>[^/]+)$"),
}


@dataclass
class Posted:
    repository: str
    sha: str
    state: str
    context: str
    description: str
    target_url: str | None
    body: dict[str, Any]


@dataclass
class ForgeDouble:
    kind: str  # github | gitlab | gitea
    token: str = "forge-token"
    prefix: str = ""  # e.g. "/api/v3" for GitHub Enterprise Server
    commits: dict[str, set[str]] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)
    requests: int = 0
    _failures: list[int] = field(default_factory=list)
    _rate_limited_until: float = 0.0
    _secondary_retry_after: int | None = None
    _server: ThreadingHTTPServer | None = None
    _port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- set-up
    def add_commit(self, repository: str, sha: str) -> None:
        self.commits.setdefault(repository, set()).add(sha)

    def fail_next(self, count: int, status: int = 503) -> None:
        self._failures.extend([status] * count)

    def rate_limit(self, reset_in: float) -> None:
        """GitHub's primary limit: 403 with x-ratelimit-remaining 0 until the reset time."""
        self._rate_limited_until = time.time() + reset_in

    def secondary_rate_limit(self, retry_after: int) -> None:
        """One 429 with retry-after (GitHub secondary limit, GitLab and Gitea rate limits)."""
        self._secondary_retry_after = retry_after

    @property
    def api_url(self) -> str:
        base = f"http://127.0.0.1:{self._port}{self.prefix}"
        return {"github": base, "gitlab": f"{base}/api/v4", "gitea": f"{base}/api/v1"}[self.kind]

    def states(self, repository: str, sha: str, context: str) -> list[str]:
        return [
            p.state
            for p in self.posted
            if (p.repository, p.sha, p.context) == (repository, sha, context)
        ]

    # --- life cycle
    def up(self) -> ForgeDouble:
        self._port = self._port or free_port()
        self._server = serve_json(
            self._port,
            lambda _method, path, headers, raw: self.handle(path, dict(headers), raw),
            methods=("POST",),
        )
        return self

    def down(self) -> None:
        if self._server is not None:
            stop(self._server)
            self._server = None

    def __enter__(self) -> ForgeDouble:
        return self.up()

    def __exit__(self, *_exc: object) -> None:
        self.down()

    # --- the API
    def handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests += 1
            if not path.startswith(self.prefix):
                return 404, {"message": "Not Found"}, {}
            match = ROUTES[self.kind].match(path[len(self.prefix) :])
            if match is None:
                return 404, {"message": "Not Found"}, {}
            if self._failures:
                status = self._failures.pop(0)
                return status, {"message": "Server Error"}, {}
            limited = self._rate_limit()
            if limited is not None:
                return limited
            if not self._authorized(headers):
                return self._unauthorized()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return 400, {"message": "Problems parsing JSON"}, {}
            return getattr(self, f"_{self.kind}")(match, body)

    def _rate_limit(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if self._secondary_retry_after is not None:
            retry, self._secondary_retry_after = self._secondary_retry_after, None
            headers = {"Retry-After": str(retry)}
            if self.kind == "gitlab":
                headers["RateLimit-Reset"] = str(int(time.time()) + retry)
            return 429, {"message": "You have exceeded a secondary rate limit."}, headers
        if self.kind == "github" and time.time() < self._rate_limited_until:
            return (
                403,
                {"message": "API rate limit exceeded for user ID 1."},
                {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(int(self._rate_limited_until) + 1),
                },
            )
        return None

    def _authorized(self, headers: dict[str, str]) -> bool:
        lower = {k.lower(): v for k, v in headers.items()}
        if self.kind == "gitlab":
            given = lower.get("private-token") or lower.get("authorization", "").removeprefix(
                "Bearer "
            )
            return given == self.token
        scheme, _, value = lower.get("authorization", "").partition(" ")
        return scheme.lower() in ("bearer", "token") and value == self.token

    def _unauthorized(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        message = {
            "github": {
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
            },
            "gitlab": {"message": "401 Unauthorized"},
            "gitea": {"message": "token is required", "url": "https://gitea/api/swagger"},
        }[self.kind]
        return 401, message, {}

    def _record(self, repository: str, sha: str, context: str, body: dict[str, Any]) -> dict:
        posted = Posted(
            repository,
            sha,
            body["state"],
            context,
            body.get("description") or "",
            body.get("target_url"),
            body,
        )
        self.posted.append(posted)
        return {
            "id": len(self.posted),
            "state": posted.state,
            "description": posted.description,
            "target_url": posted.target_url,
            "context": context,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _github(
        self, match: re.Match[str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        repository = f"{match['owner']}/{match['repo']}"
        if repository not in self.commits:
            return 404, {"message": "Not Found"}, {}
        problems = []
        if match["sha"] not in self.commits[repository]:
            problems.append(f"No commit found for SHA: {match['sha']}")
        if body.get("state") not in STATES["github"]:
            problems.append("state is not included in the list")
        if len(body.get("description") or "") > 140:
            problems.append("description is too long (maximum is 140 characters)")
        if problems:
            errors = [{"resource": "Status", "message": p} for p in problems]
            return 422, {"message": "Validation Failed", "errors": errors}, {}
        context = body.get("context") or "default"
        return 201, self._record(repository, match["sha"], context, body), {}

    def _gitea(
        self, match: re.Match[str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        repository = f"{match['owner']}/{match['repo']}"
        if repository not in self.commits or match["sha"] not in self.commits[repository]:
            return 404, {"message": "The target couldn't be found.", "errors": []}, {}
        if body.get("state") not in STATES["gitea"]:
            return 422, {"message": f"[State]: invalid state {body.get('state')!r}"}, {}
        context = body.get("context") or "default"
        return 201, self._record(repository, match["sha"], context, body), {}

    def _gitlab(
        self, match: re.Match[str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        project = unquote(match["project"])
        if project not in self.commits:
            return 404, {"message": "404 Project Not Found"}, {}
        if match["sha"] not in self.commits[project]:
            return 404, {"message": "404 Commit Not Found"}, {}
        state = body.get("state")
        if state not in STATES["gitlab"]:
            return 400, {"error": "state does not have a valid value"}, {}
        target_url = body.get("target_url")
        if target_url is not None:
            problems = []
            if len(target_url) > 255:
                problems.append("is too long (maximum is 255 characters)")
            if not re.match(r"^https?://[^/\s]+", target_url):
                problems.append("is blocked: Only allowed schemes are http, https")
            if problems:
                return 400, {"message": {"target_url": problems}}, {}
        name = body.get("name") or body.get("context") or "default"
        current = [
            p.state
            for p in self.posted
            if (p.repository, p.sha, p.context) == (project, match["sha"], name)
        ]
        if current and current[-1] == state and state in ("pending", "running"):
            verb = {"pending": "enqueue", "running": "run"}[state]
            return 400, {"message": f"Cannot transition status via :{verb} from :{state}"}, {}
        return 201, self._record(project, match["sha"], name, body), {}
