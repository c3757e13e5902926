"""The HTTP surface of `trigger-service worker` (TRIGGER_WORKER_PORT): /healthz answers 200 while
the worker loop runs (503 once it has stopped, so the kubelet restarts the pod), /readyz also
needs the store, /metrics is the process's Prometheus metrics. No webhook or operator routes: a
worker receives nothing; the service's pods do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from trigger_service.api import health
from trigger_service.lifecycle import end_process
from trigger_service.service import Services


def create_worker_app(services: Services) -> FastAPI:
    """An app that runs `services.worker` for its lifetime (started on start-up, stopped on
    shutdown, e.g. SIGTERM under uvicorn) and reports on it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if services.health is not None:
            services.health.start()
        services.worker.on_death = end_process  # crash-only: a dead worker ends the process
        services.worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(services.worker.stop)
            if services.health is not None:
                services.health.stop()

    app = FastAPI(
        title="trigger-service worker",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services

    @app.get("/healthz")
    async def healthz() -> Response:
        if not services.worker.alive:
            return JSONResponse({"status": "worker stopped"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        if not services.worker.alive:
            return JSONResponse({"status": "worker stopped"}, 503)
        try:
            await run_in_threadpool(services.inbox.ping)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONResponse({"status": "ready"})

    # The same exposition as the service's: the inbox depth is read at scrape time.
    app.add_api_route("/metrics", health.metrics, methods=["GET"])
    return app
