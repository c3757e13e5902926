"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
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


@router.get("/readyz", summary="The store is reachable")
async def readyz(services: Services = Depends(get_services)) -> Response:
    try:
        await run_in_threadpool(services.inbox.ping)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(services: Services = Depends(get_services)) -> Response:
    for status, count in (await run_in_threadpool(services.inbox.depth)).items():
        INBOX_DEPTH.labels(status).set(count)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
