"""What every source module provides: the same two verbs.

    verify(headers, body, secret) -> None          raise Unauthorized on a bad signature/token
    parse(headers, body, received_at) -> list[Event]
        raise RejectedInput naming what is wrong, or Ignored(reason) for a delivery of no
        interest (ping, test event, unsupported event type)

`headers` has lower-case keys. `body` is the raw request body (signatures are over raw bytes).
A source never touches the store or the rules: it only reads the sender's payload.

Its attributes declare the sender to the rest of the service, which derives from them rather
than naming senders itself: api.webhooks registers `route` (with `summary` and `media_types`)
and caps the body at the setting `max_body_setting` names, Settings.secret_for reads the field
`secret_setting` names, help texts list the registry's names. tests/test_senders_agree.py
checks the places that cannot import them (the Settings fields, the chart, the docs).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from trigger_service.events import Event


class Source(Protocol):
    name: str  # registry key, Event.source and the metrics label
    route: str  # the path the sender POSTs to: /webhooks/<name> (a person's: /trigger)
    secret_setting: str  # the Settings field of its secret: TRIGGER_<FIELD>, TRIGGER_<FIELD>_FILE
    max_body_setting: str  # the Settings field capping its body, in bytes (413 beyond)
    media_types: tuple[str, ...]  # the content types it posts (OpenAPI request body)
    summary: str  # one line: what its route receives (OpenAPI summary)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None: ...

    def parse(
        self, headers: Mapping[str, str], body: bytes, received_at: datetime
    ) -> list[Event]: ...
