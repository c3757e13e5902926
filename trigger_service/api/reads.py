"""Read-only views: events, decisions, runs, pipelines, models, and the lineage question
"why is this model version serving?" answered in one call."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool

from trigger_service.api.deps import get_services, require_operator
from trigger_service.events import EventKind
from trigger_service.inbox import queries as inbox
from trigger_service.inbox.store import STATUSES
from trigger_service.outbox.store import items_for as outbox_items
from trigger_service.service import Services
from trigger_service.sources import SOURCES
from trigger_service.tracking import runs as tracked
from trigger_service.tracking.models import decision_of, read_models
from trigger_service.validation import INT64_MAX
from trigger_service.versions import queries as versions
from trigger_service.worker import queries as decided

router = APIRouter(tags=["reads"])
Limit = Query(50, ge=1, le=500)
Offset = Query(0, ge=0, le=INT64_MAX)  # beyond 64 bits the store cannot take it


def _one_of(values: Iterable[str], description: str) -> Any:
    """A filter that takes only these values: a misspelt one is a 400 naming the field and the
    values, not an empty list that reads as "nothing there"."""
    return Query(None, pattern=f"^({'|'.join(sorted(values))})$", description=description)


def _not_found(what: str, ident: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} {ident} not found")


@router.get("/events", summary="Stored events, newest first")
async def list_events(
    source: str | None = _one_of(SOURCES, "the sender"),
    kind: str | None = _one_of([k.value for k in EventKind], "code, data, drift or manual"),
    status: str | None = _one_of(STATUSES, f"one of {', '.join(STATUSES)}"),
    limit: int = Limit,
    offset: int = Offset,
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    items = await run_in_threadpool(services.inbox.list, source, kind, status, limit, offset)
    return {"items": items, "limit": limit, "offset": offset}


def _event(services: Services, event_id: str) -> dict[str, Any] | None:
    item = services.inbox.get(event_id)
    if item is None:
        return None
    with services.engine.connect() as conn:
        return {**item, "decisions": decided.decisions_of_event(conn, event_id)}


@router.get("/events/{event_id}", summary="One event, with the decisions it ended in")
async def get_event(event_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    item = await run_in_threadpool(_event, services, event_id)
    if item is None:
        raise _not_found("event", event_id)
    return item


@router.post(
    "/events/{event_id}/replay",
    summary="Send a dead-lettered event through again (manual trigger's token)",
    dependencies=[Depends(require_operator)],
)
async def replay_event(event_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    if await run_in_threadpool(services.inbox.get, event_id) is None:
        raise _not_found("event", event_id)
    if not await run_in_threadpool(services.inbox.replay, event_id):
        raise HTTPException(409, detail=f"event {event_id} is still in flight; nothing replayed")
    services.worker_wakeup()
    return {"event_id": event_id, "status": "pending"}


def _read(services: Services, fn: Any, *args: Any) -> Any:
    with services.engine.connect() as conn:
        return fn(conn, *args)


@router.get("/decisions", summary="Decisions, newest first")
async def list_decisions(
    outcome: str | None = _one_of(("run", "no_run"), "run or no_run"),
    state: str | None = None,
    pipeline: str | None = None,
    limit: int = Limit,
    offset: int = Offset,
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    items = await run_in_threadpool(
        _read, services, decided.list_decisions, outcome, state, pipeline, limit, offset
    )
    return {"items": items, "limit": limit, "offset": offset}


@router.get("/decisions/{decision_id}", summary="One decision with the events it covers")
async def get_decision(
    decision_id: str, services: Services = Depends(get_services)
) -> dict[str, Any]:
    item = await run_in_threadpool(_read, services, decided.get_decision, decision_id)
    if item is None:
        raise _not_found("decision", decision_id)
    return dict(item)


@router.get("/runs", summary="Runs, newest first")
async def list_runs(
    state: str | None = None,
    pipeline: str | None = None,
    limit: int = Limit,
    offset: int = Offset,
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    items = await run_in_threadpool(
        _read, services, tracked.list_runs, state, pipeline, limit, offset
    )
    return {"items": items, "limit": limit, "offset": offset}


def run_lineage(conn: Any, run_id: str) -> dict[str, Any] | None:
    row = tracked.get_run(conn, run_id)
    if row is None:
        return None
    run = tracked.run_dict(conn, row)
    run["decision"] = decided.get_decision(conn, row.decision_id)
    event_ids = run["decision"]["event_ids"] if run["decision"] else []
    run["events"] = [inbox.event_summary(conn, e) for e in event_ids[:100]]
    run["pipeline_version"] = versions.pipeline_version(conn, row.pipeline, row.version)
    # What was told elsewhere about this run: commit statuses, registry registrations.
    run["outbox"] = outbox_items(conn, run_id=row.id)
    return run


@router.get("/runs/{run_id}", summary="One run: states, version, decision, events, model")
async def get_run(run_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    item = await run_in_threadpool(_read, services, run_lineage, run_id)
    if item is None:
        raise _not_found("run", run_id)
    return dict(item)


@router.get("/pipelines", summary="Versions known, and which one each branch runs and why")
async def list_pipelines(services: Services = Depends(get_services)) -> dict[str, Any]:
    configured = sorted(p.name for p in services.rules().pipelines)
    known = await run_in_threadpool(_read, services, versions.pipelines)
    return {"configured": configured, "items": known}


@router.get("/models", summary="Published model versions under the models root")
async def list_models(services: Services = Depends(get_services)) -> dict[str, Any]:
    root = services.models.models_root
    if root is None or not root.is_dir():
        return {"items": [], "note": f"the models root {root} is not readable from this service"}
    return {"items": await run_in_threadpool(read_models, root)}


def _model_lineage(conn: Any, services: Services, name: str, version: int) -> dict[str, Any]:
    models = read_models(services.models.models_root) if services.models.models_root else []
    model = next((m for m in models if m["model_name"] == name and m["version"] == version), None)
    row = tracked.run_for_model(conn, name, version)
    if row is None and model is not None:
        decision_id = decision_of(model)
        row = tracked.run_by_decision(conn, decision_id) if decision_id else None
    if model is None and row is None:
        raise _not_found("model version", f"{name}/{version}")
    lineage = run_lineage(conn, row.id) if row is not None else None
    return {"model": model, "run": lineage}


@router.get(
    "/models/{name}/{version}",
    summary="Why is this model version serving? model -> run -> decision -> events -> commit",
)
async def model_lineage(
    name: str,
    version: int = Path(ge=0, le=INT64_MAX),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with services.engine.connect() as conn:
            return _model_lineage(conn, services, name, version)

    return await run_in_threadpool(read)
