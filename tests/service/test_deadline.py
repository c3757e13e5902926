"""Every request has a deadline: a handler that hangs gets the client a 503, not a hang."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from trigger_service.api.deadline import RequestDeadline


def test_a_hanging_handler_is_answered_503_at_the_deadline() -> None:
    app = FastAPI()

    @app.get("/hang")
    async def hang() -> dict[str, str]:
        await asyncio.sleep(60)
        return {"never": "answered"}

    @app.get("/quick")
    async def quick() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(RequestDeadline, seconds=0.5)
    with TestClient(app) as client:
        started = time.monotonic()
        answer = client.get("/hang")
        assert time.monotonic() - started < 5
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert "deadline" in answer.json()["error"]
        assert client.get("/quick").json() == {"ok": "yes"}
