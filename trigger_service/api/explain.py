"""POST /explain: the decision a payload (or a stored event) would produce now; changes nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from trigger_service.api.deps import get_services, require_operator
from trigger_service.errors import RejectedInput
from trigger_service.explain import explain, parse_payload
from trigger_service.service import Services
from trigger_service.sources import SOURCES
from trigger_service.validation import checked_events, text

router = APIRouter(tags=["decisions"])


class ExplainRequest(BaseModel):
    event_id: str | None = Field(None, description="A stored event to decide again.")
    source: str | None = Field(None, description=", ".join(SOURCES))
    headers: dict[str, str] = Field(default_factory=dict, description="The sender's headers.")
    payload: Any = Field(None, description="The sender's JSON body.")
    body: str | None = Field(None, description="Or the raw body, as sent.")


@router.post("/explain", summary="What would this payload or stored event do now? Changes nothing")
async def explain_route(
    request: ExplainRequest,
    services: Services = Depends(get_services),
    _operator: None = Depends(require_operator),
) -> dict[str, Any]:
    for name in ("event_id", "source", "body"):
        if (value := getattr(request, name)) is not None:
            text(value, name)
    for key, value in request.headers.items():
        text(key, "headers")
        text(value, f"headers.{key}")
    if request.event_id is not None:
        stored = await run_in_threadpool(services.inbox.get_event, request.event_id)
        if stored is None:
            raise HTTPException(404, detail=f"event {request.event_id} not found")
        events = [stored]
    elif request.source is not None:
        if request.body is not None:
            raw = request.body.encode()
        elif request.payload is not None:
            raw = json.dumps(request.payload).encode()
        else:
            raise RejectedInput("give payload or body with source")
        events = checked_events(parse_payload(request.source, request.headers, raw), services.rules)
    else:
        raise RejectedInput("give either event_id, or source with payload (or body)")
    heads = services.worker.heads
    answers = await run_in_threadpool(
        explain,
        events,
        services.rules(),
        services.engine,
        services.clock(),
        heads.for_batch() if heads is not None else None,
    )
    return {"explanations": answers, "changed_nothing": True}
