"""A GitHub push touching only docs, and GitHub's signature over a body (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

DOCS_PUSH: dict[str, Any] = {
    "ref": "refs/heads/main",
    "before": "1" * 40,
    "after": "2" * 40,
    "created": False,
    "deleted": False,
    "repository": {"full_name": "team/songs", "clone_url": "https://example.com/team/songs.git"},
    "pusher": {"name": "ana"},
    "commits": [{"id": "2" * 40, "added": [], "modified": ["docs/x.md"], "removed": []}],
    "head_commit": {"id": "2" * 40},
}


def signature(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
