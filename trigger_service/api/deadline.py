"""Every request has a deadline: past it the client gets 503 with Retry-After, never a hang.

A pure ASGI middleware (no BaseHTTPMiddleware: that costs a task and a stream per request).
If the handler has already started its answer when the deadline passes, the connection is cut
instead: half an answer cannot be taken back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestDeadline:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracked_send)
        except TimeoutError:
            if started:
                raise
            await _unavailable(send, f"no answer within the {self.seconds:g} s request deadline")


async def _unavailable(send: Send, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
