"""What both registry channels share: the registration payload and the checks on its values.

A registration (what the tracking stage stores in the outbox, one per published version):

    {"model": "songs", "version": 7,             the version folder on the models volume
     "source": "pvc://models/songs/7",           where the registry says the model lives
     "description": str, "tags": {str: str},     lineage: commit, runs, decision, events, metrics
     "alias": "champion" | None}                 the serving version's alias, moved with it

Delivery is idempotent: each channel looks the version up by its volume version before it
creates one, so a resend after a crash or a replay never makes a second registry version.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from trigger_service.errors import PermanentError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
VOLUME_VERSION_TAG = "volume_version"
MAX_TAG_VALUE = 5000


@dataclass(frozen=True)
class Registration:
    model: str
    version: int
    source: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    alias: str | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Registration:
        try:
            model = str(payload["model"])
            version = int(payload["version"])
            source = str(payload["source"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"registration without a valid {exc}") from exc
        if not NAME.fullmatch(model):
            raise PermanentError(f"not a model name a registry takes: {model[:100]!r}")
        if not 0 < version < 2**31:
            raise PermanentError(f"model version out of range: {version}")
        alias = payload.get("alias")
        if alias is not None and not ALIAS.fullmatch(str(alias)):
            raise PermanentError(f"not an alias: {str(alias)[:100]!r}")
        tags = {
            str(k)[:250]: str(v)[:MAX_TAG_VALUE] for k, v in (payload.get("tags") or {}).items()
        }
        tags[VOLUME_VERSION_TAG] = str(version)
        return cls(
            model=model,
            version=version,
            source=source,
            description=str(payload.get("description") or "")[:5000],
            tags=tags,
            alias=str(alias) if alias else None,
        )


class RegistryClient:
    """A registry's REST API over httpx. Subclasses set `name` (the channel) and `api` (the
    API's path under the server URL) and implement `deliver(payload)`.

    `url` is the server (e.g. http://mlflow:5000); `token`, when set, is sent as a Bearer token;
    `timeout` in seconds per request; `clock` is what `outbox.http.call` reads Retry-After
    against; `transport` replaces the network in tests."""

    name: str
    api: str

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base = url.rstrip("/") + self.api
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        self._clock = clock

    def close(self) -> None:
        self._client.close()
