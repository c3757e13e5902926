"""What every source module provides: the same two verbs.

    verify(headers, body, secret) -> None          raise Unauthorized on a bad signature/token
    parse(headers, body, received_at) -> list[Event]
        raise RejectedInput naming what is wrong, or Ignored(reason) for a delivery of no
        interest (ping, test event, unsupported event type)

`headers` has lower-case keys. `body` is the raw request body (signatures are over raw bytes).
A source never touches the store or the rules: it only reads the sender's payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from trigger_service.events import Event


class Source(Protocol):
    name: str  # registry key; the route is /webhooks/<name> (manual: /trigger)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None: ...

    def parse(
        self, headers: Mapping[str, str], body: bytes, received_at: datetime
    ) -> list[Event]: ...
