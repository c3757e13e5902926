"""The FastAPI application: routes at the edge, services on app.state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trigger_service import console
from trigger_service.api import (
    errors,
    explain,
    health,
    openapi,
    operator,
    promote,
    reads,
    webhooks,
)
from trigger_service.api.body_limit import BodyLimit
from trigger_service.api.deadline import RequestDeadline
from trigger_service.lifecycle import end_process
from trigger_service.service import Services


def create_app(services: Services, start_worker: bool | None = None) -> FastAPI:
    run_worker = services.settings.worker_enabled if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.warn_about_open_routes()
        if services.health is not None:
            services.health.start()
        if run_worker:
            services.worker.on_death = end_process
            services.worker.start()
        try:
            yield
        finally:
            if services.health is not None:
                services.health.stop()
            if run_worker:
                services.worker.stop()
            stop = getattr(services.backend, "stop", None)
            if callable(stop):
                stop()

    app = FastAPI(
        title="KFP GitOps trigger service",
        description="Webhooks in (git pushes, bucket notifications, drift alerts, manual), "
        "decided and deduplicated Kubeflow Pipelines runs out.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.worker_expected = run_worker
    app.add_middleware(RequestDeadline, seconds=services.settings.request_timeout_seconds)
    app.add_middleware(
        BodyLimit,
        limit=services.settings.max_body_bytes,
        timeout=services.settings.body_timeout_seconds,
        budget_bytes=services.settings.max_unverified_bytes,
    )
    errors.install(app)
    openapi.install(app)
    for module in (webhooks, reads, explain, health, operator, promote):
        app.include_router(module.router)
    console.install(app)
    return app
