"""FastAPI dependencies: the wired services live on app.state."""

from __future__ import annotations

from fastapi import Request

from trigger_service.service import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
