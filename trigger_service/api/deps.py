"""FastAPI dependencies: the wired services live on app.state; operator routes need a token."""

from __future__ import annotations

from fastapi import Header, Request

from trigger_service.errors import Unauthorized
from trigger_service.service import Services
from trigger_service.sources import SOURCES


async def get_services(request: Request) -> Services:
    # async: a plain def dependency would cost a thread-pool hop on every request
    services: Services = request.app.state.services
    return services


async def require_operator(request: Request, authorization: str | None = Header(None)) -> None:
    """Routes that act (explain, replay) take the manual trigger's bearer token."""
    services: Services = request.app.state.services
    token = services.settings.secret_for("manual")
    if token is None:
        if services.settings.allow_unauthenticated:
            return
        raise Unauthorized("this route uses the manual trigger's token, and none is configured")
    SOURCES["manual"].verify({"authorization": authorization or ""}, b"", token)
