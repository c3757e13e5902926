"""Operator routes: cancel a run or a waiting decision, read a run's log, pause and resume a
trigger, and the rules file's status. Acting routes take the manual trigger's token."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from trigger_service import pauses
from trigger_service.api.deps import get_services, require_operator
from trigger_service.service import Services
from trigger_service.tracking import logs
from trigger_service.tracking import runs as tracked
from trigger_service.tracking.cancel import Canceled, cancel_run
from trigger_service.worker import queries as decided
from trigger_service.worker.canceling import cancel_decision
from trigger_service.worker.decisions import follow_run

log = logging.getLogger(__name__)
router = APIRouter(tags=["operator"])
Operator = Depends(require_operator)
# Ids this service made (r-/d- + hex) and rules names: anything else is a 400 naming the field,
# before it reaches the store (PostgreSQL refuses NUL in text).
RunId = Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="A run id, r-...")
DecisionId = Path(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="A decision id, d-...")
TriggerName = Path(max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Trigger")


class CancelResult(BaseModel):
    id: str = Field(description="The run or decision id.")
    state: str = Field(description="Its state after the request.")
    canceled: bool = Field(description="True when it is canceled now.")
    detail: str = Field(description="What happened, or why nothing did.")


class TriggerStatus(BaseModel):
    name: str
    on: str = Field(description="code, data, drift or manual")
    pipelines: list[str] = Field(description="The pipelines it runs (manual: allowed ones).")
    paused: bool
    paused_at: float | None = Field(None, description="Epoch seconds.")
    pause_reason: str | None = None


class RefusedEdit(BaseModel):
    at: float = Field(description="Epoch seconds.")
    error: str
    sha256: str | None = Field(None, description="Of the refused content.")


class RulesStatusOut(BaseModel):
    path: str
    sha256: str | None = Field(None, description="Of the content in force.")
    commit: str | None = Field(None, description="Last git commit of the file, if in git.")
    loaded_at: float | None = Field(None, description="Epoch seconds.")
    last_refused_edit: RefusedEdit | None = Field(
        None, description="The latest edit refused (the previous rules stayed in force)."
    )
    pipelines: list[str]
    triggers: list[TriggerStatus]


class PauseRequest(BaseModel):
    reason: str | None = Field(None, max_length=500, description="Shown beside the pause.")


def _answer(result: Canceled | None, what: str, ident: str) -> CancelResult:
    if result is None:
        raise HTTPException(404, detail=f"{what} {ident} not found")
    if result.conflict:
        raise HTTPException(409, detail=f"{what} {ident}: {result.detail}")
    return CancelResult(
        id=result.id, state=result.state, canceled=result.done, detail=result.detail
    )


@router.post(
    "/runs/{run_id}/cancel",
    summary="Stop a run on its backend (manual trigger's token)",
    response_model=CancelResult,
    responses={404: {"description": "no such run"}, 409: {"description": "already ended"}},
    dependencies=[Operator],
)
async def cancel_run_route(run_id: str = RunId, services: Services = Depends(get_services)) -> Any:
    result = await run_in_threadpool(
        cancel_run, services.engine, services.backend, run_id, services.clock(), follow_run
    )
    return _answer(result, "run", run_id)


@router.post(
    "/decisions/{decision_id}/cancel",
    summary="Close a collecting, queued or ready decision before it runs (manual token)",
    response_model=CancelResult,
    responses={404: {"description": "no such decision"}, 409: {"description": "not waiting"}},
    dependencies=[Operator],
)
async def cancel_decision_route(
    decision_id: str = DecisionId, services: Services = Depends(get_services)
) -> Any:
    result = await run_in_threadpool(
        cancel_decision, services.engine, decision_id, services.clock()
    )
    return _answer(result, "decision", decision_id)


def _run_row(services: Services, run_id: str) -> Any:
    with services.engine.connect() as conn:
        return tracked.get_run(conn, run_id)


@router.get(
    "/runs/{run_id}/logs",
    summary="A local run's log (text); follow=true streams it until the run ends (manual token)",
    response_class=PlainTextResponse,
    responses={
        404: {"description": "no such run"},
        409: {"description": "the run's backend keeps no log here (kfp: see the run's url)"},
    },
    dependencies=[Operator],
)
async def run_logs(
    run_id: str = RunId,
    follow: bool = Query(False, description="Keep the answer open and stream new lines."),
    offset: int = Query(0, ge=0, le=2**40, description="Start at this byte."),
    services: Services = Depends(get_services),
) -> Response:
    row = await run_in_threadpool(_run_row, services, run_id)
    if row is None:
        raise HTTPException(404, detail=f"run {run_id} not found")
    path = logs.log_file(row, services.settings.runs_dir)
    if path is None and row.backend == "local" and row.state == "submitting":
        raise HTTPException(409, detail=f"run {run_id} has not started yet; ask again shortly")
    if path is None:
        where = f": see {row.url}" if row.url else ""
        raise HTTPException(409, detail=f"run {run_id} ({row.backend}) has no log here{where}")

    def finished() -> bool:
        if not follow:  # what is there now, streamed in chunks whatever its size
            return True
        current = _run_row(services, run_id)
        return current is None or current.state in logs.FINISHED

    return StreamingResponse(
        logs.follow(path, offset, finished), media_type="text/plain; charset=utf-8"
    )


def rules_status(services: Services) -> RulesStatusOut:
    rules = services.rules()
    status = services.rules.status
    with services.engine.connect() as conn:
        held = pauses.paused(conn)
    triggers = []
    for trigger in rules.triggers:
        if trigger.on == "manual":
            allowed = getattr(trigger, "pipelines", None)
            names = list(allowed) if allowed else [p.name for p in rules.pipelines]
        else:
            names = [str(getattr(trigger, "pipeline", ""))]
        pause = held.get(trigger.name)
        triggers.append(
            TriggerStatus(
                name=trigger.name,
                on=trigger.on,
                pipelines=names,
                paused=pause is not None,
                paused_at=pause["paused_at"] if pause else None,
                pause_reason=pause["reason"] if pause else None,
            )
        )
    refused = status.last_refused
    return RulesStatusOut(
        path=str(status.path),
        sha256=status.sha256,
        commit=status.commit,
        loaded_at=status.loaded_at,
        last_refused_edit=RefusedEdit(at=refused.at, error=refused.error, sha256=refused.sha256)
        if refused
        else None,
        pipelines=[p.name for p in rules.pipelines],
        triggers=triggers,
    )


@router.get("/rules", summary="The rules in force, the last refused edit, paused triggers")
async def get_rules(services: Services = Depends(get_services)) -> RulesStatusOut:
    return await run_in_threadpool(rules_status, services)


def set_paused(services: Services, name: str, paused: bool, reason: str | None) -> TriggerStatus:
    """Pause or resume trigger `name` of the rules in force; 404 for any other name."""
    if not any(t.name == name for t in services.rules().triggers):
        raise HTTPException(404, detail=f"trigger {name} is not in the rules in force")
    changed = pauses.set_paused(services.engine, name, paused, services.clock(), reason)
    if changed:
        log.info("trigger %s %s by an operator", name, "paused" if paused else "resumed")
    return next(t for t in rules_status(services).triggers if t.name == name)


@router.post(
    "/triggers/{name}/pause",
    summary="Pause a trigger: its events decide no run until resumed (manual token)",
    dependencies=[Operator],
)
async def pause_trigger(
    name: str = TriggerName,
    request: PauseRequest | None = Body(None),
    services: Services = Depends(get_services),
) -> TriggerStatus:
    reason = request.reason if request else None
    return await run_in_threadpool(set_paused, services, name, True, reason)


@router.post(
    "/triggers/{name}/resume",
    summary="Resume a paused trigger (manual token)",
    dependencies=[Operator],
)
async def resume_trigger(
    name: str = TriggerName, services: Services = Depends(get_services)
) -> TriggerStatus:
    return await run_in_threadpool(set_paused, services, name, False, None)


class StatusOut(BaseModel):
    rules: RulesStatusOut
    backlog: dict[str, int] = Field(description="Stored events by status.")
    waiting_decisions: dict[str, int] = Field(
        description="Run decisions not yet a run, by state (collecting, queued, ready, ...)."
    )
    active_runs: list[dict[str, Any]] = Field(description="Runs submitting, pending or running.")
    recent_decisions: list[dict[str, Any]] = Field(description="The 10 newest decisions.")
    dead_letters: list[dict[str, Any]] = Field(description="The 10 newest dead events.")
    dead_letter_count: int


def status(services: Services) -> StatusOut:
    """Everything `trigger-service status` shows, in one read."""
    backlog = services.inbox.depth()
    with services.engine.connect() as conn:
        waiting = decided.waiting_counts(conn)
        active = [
            run
            for state in ("submitting", "pending", "running")
            for run in tracked.list_runs(conn, state, None, 100, 0)
        ]
        recent = decided.list_decisions(conn, None, None, None, 10, 0)
    dead = services.inbox.list(None, None, "dead", 10, 0)
    return StatusOut(
        rules=rules_status(services),
        backlog=backlog,
        waiting_decisions=waiting,
        active_runs=active,
        recent_decisions=recent,
        dead_letters=dead,
        dead_letter_count=backlog.get("dead", 0),
    )


@router.get("/status", summary="One screen: rules, backlog, active runs, recent decisions, dead")
async def get_status(services: Services = Depends(get_services)) -> StatusOut:
    return await run_in_threadpool(status, services)
