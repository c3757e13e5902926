"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trigger_service.api.deps import get_services
from trigger_service.metrics import INBOX_DEPTH
from trigger_service.service import Services

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The store takes writes, the inbox writer and the worker run (checks say why not)",
)
async def readyz(request: Request, services: Services = Depends(get_services)) -> Response:
    worker_expected = bool(getattr(request.app.state, "worker_expected", False))
    ready, checks = await run_in_threadpool(services.readiness, worker_expected)
    if not ready:
        return JSONResponse({"status": "unavailable", "checks": checks}, 503)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(services: Services = Depends(get_services)) -> Response:
    try:
        depth = await run_in_threadpool(services.inbox.depth)
    except Exception:  # the store is down: still serve every other metric (store health)
        depth = {}
    for status, count in depth.items():
        INBOX_DEPTH.labels(status).set(count)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
