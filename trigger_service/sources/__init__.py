"""Senders' payloads in, Events out: one module per sender, all with the same two verbs.

`SOURCES` maps the sender's name to its source and is the one list of senders: the webhook
routes, the secret lookup (Settings.secret_for) and the help texts are derived from it and from
each source's declared attributes (see `base.Source`); callers look the source up here and never
branch on the kind. A new sender is a module here plus its entry in the tuple below.

Shared parsing lives in the `_`-prefixed modules: `_json` (untrusted JSON, typed getters),
`_auth` (constant-time secret checks), `_git_push` (push payload -> CodeSubject for github,
gitlab and gitea), `_alerts` (an alert group -> drift Events for alertmanager and grafana).
"""

from __future__ import annotations

from trigger_service.sources import alertmanager, gitea, github, gitlab, grafana, manual, storage
from trigger_service.sources._alerts import truncated_groups
from trigger_service.sources.base import Source

SOURCES: dict[str, Source] = {
    module.source.name: module.source
    for module in (github, gitlab, gitea, storage, alertmanager, grafana, manual)
}

__all__ = ["SOURCES", "Source", "truncated_groups"]
