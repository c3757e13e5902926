"""Every route's body within the same limits as a webhook's, before the route (and its token
check) runs.

FastAPI reads and parses a JSON body before a route's dependencies run, so without this an
unauthenticated client could make /explain or an operator route hold a body of any size (200 MB:
720 MB of RSS) before the 401. The webhook routes (`/webhooks/*`, `/trigger`) read their bodies
themselves with the same limits (api/intake.py) and pass through untouched.

    BodyLimit(app, limit, timeout): 413 over `limit` bytes (Content-Length checked before
    reading), 408 when the body takes over `timeout` seconds, 503 when the shared budget of
    unverified bytes (TRIGGER_MAX_UNVERIFIED_BYTES) is spent.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trigger_service.api.errors import status_for
from trigger_service.api.intake import read_body, shared_budget, unverified
from trigger_service.errors import BodyTimeout, PayloadTooLarge, RejectedInput, TemporaryError


def _self_limited(path: str) -> bool:
    return path == "/trigger" or path.startswith("/webhooks/")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, timeout: float, budget_bytes: int) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.budget_bytes = budget_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _self_limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        budget = shared_budget(scope["app"].state, self.budget_bytes)
        try:
            async with unverified(budget) as claim:
                body = await read_body(request, self.limit, self.timeout, claim)
        except (PayloadTooLarge, BodyTimeout, RejectedInput, TemporaryError) as exc:
            await _refuse(send, status_for(exc), str(exc))
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # a disconnect, for a route that waits for one

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is not read
    ]
    if status == 503:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
