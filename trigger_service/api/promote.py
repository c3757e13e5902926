"""POST /models/{name}/{version}/promote: a manual roll-back (or forward) by an operator."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from trigger_service.api.deps import get_services, require_operator
from trigger_service.modelserver.promote import MAX_VERSION, ModelsRootReadOnly, VersionNotFound
from trigger_service.service import Services
from trigger_service.tracking.promotion import promote

router = APIRouter()


@router.post(
    "/models/{name}/{version}/promote",
    summary="Serve this version: retire higher ones on the volume, roll out, move the alias",
    dependencies=[Depends(require_operator)],
)
async def promote_version(
    name: str = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    version: int = Path(ge=1, le=MAX_VERSION),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    def act() -> dict[str, Any]:
        return promote(
            engine=services.engine,
            models_root=services.settings.models_root,
            rollout=services.models.model_server,
            registrar=services.registrar,
            model=name,
            version=version,
            clock=services.clock,
        )

    try:
        result = await run_in_threadpool(act)
    except VersionNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except ModelsRootReadOnly as exc:
        raise HTTPException(409, str(exc)) from exc
    if services.outbox is not None:
        services.outbox.wakeup()
    return result
