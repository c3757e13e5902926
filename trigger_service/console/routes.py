"""The console's pages (GET, open like the JSON reads) and actions (POST: signed in, same
origin, CSRF token). Pages read through the same functions as the API; actions call the same
operations as the operator routes, then redirect back with a message."""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from trigger_service import pauses
from trigger_service.api.operator import DecisionId, RunId, TriggerName, rules_status, set_paused
from trigger_service.api.reads import run_lineage
from trigger_service.console import queries
from trigger_service.console.session import (
    Keys,
    clear_cookie,
    same_origin,
    session,
    set_cookie,
)
from trigger_service.errors import TriggerError
from trigger_service.events import utcnow
from trigger_service.inbox import queries as inbox_reads
from trigger_service.rules.policy import Policy
from trigger_service.service import Services
from trigger_service.sources import SOURCES
from trigger_service.tracking import logs
from trigger_service.tracking import runs as tracked
from trigger_service.tracking.cancel import cancel_run
from trigger_service.versions import queries as versions
from trigger_service.worker import queries as decided
from trigger_service.worker.admission import verdict_for
from trigger_service.worker.canceling import cancel_decision
from trigger_service.worker.decisions import follow_run

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
MAX_FORM_BYTES = 16 * 1024


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["when"] = _when
templates.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str)
templates.env.globals["subject_line"] = queries.subject_line


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _keys(services: Services) -> Keys:
    return Keys(services.settings.secret_for("manual"), services.settings.allow_unauthenticated)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    services = _services(request)
    keys = _keys(services)
    cookie = session(request, keys)
    context.update(
        signed_in=cookie is not None,
        csrf=keys.csrf(cookie) if cookie else "",
        message=_message(request, keys),
    )
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _read(services: Services, fn: Any, *args: Any) -> Any:
    with services.engine.connect() as conn:
        return fn(conn, *args)


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, detail="form over 16 KiB")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, detail="not a form") from exc
    return {k: v[0] for k, v in fields.items()}


async def _action(request: Request) -> dict[str, str]:
    """The form of a POST that acts: signed in, from this origin, with the session's CSRF
    token. Anything else is a 403 page and nothing happens."""
    keys = _keys(_services(request))
    cookie = session(request, keys)
    form = await _form(request)
    if cookie is None:
        raise HTTPException(403, detail="sign in first")
    if not same_origin(request):
        raise HTTPException(403, detail="the request did not come from this console")
    offered = form.get("csrf", "")
    if not hmac.compare_digest(offered.encode(), keys.csrf(cookie).encode()):
        raise HTTPException(403, detail="the form's CSRF token is missing or stale; reload")
    return form


def _signed_message(request: Request, message: str) -> dict[str, str]:
    """The query that shows `message` on the next page: signed, so that a link from elsewhere
    cannot make the console say what an attacker wrote."""
    return {"msg": message, "sig": _keys(_services(request)).mac(f"msg:{message}")}


def _message(request: Request, keys: Keys) -> str:
    """The page's message, if this service wrote it (see _signed_message); else none."""
    message = request.query_params.get("msg", "")
    offered = request.query_params.get("sig", "")
    if not message or not hmac.compare_digest(
        offered.encode(), keys.mac(f"msg:{message}").encode()
    ):
        return ""
    return message[:300]


def _back(request: Request, path: str, message: str) -> RedirectResponse:
    return RedirectResponse(
        f"{path}?{urlencode(_signed_message(request, message))}", status_code=303
    )


# --- sign-in


@router.get("/signin")
async def signin_form(request: Request) -> HTMLResponse:
    return page(request, "signin.html", next=request.query_params.get("next", "/ui"))


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await _form(request)
    keys = _keys(_services(request))
    target = form.get("next", "/ui")
    if not target.startswith("/ui") or target.startswith("//"):
        target = "/ui"  # only ever back into the console: no open redirect
    if not same_origin(request) or not keys.accepts(form.get("token", "")):
        return page(request, "signin.html", 401, next=target, error="wrong token")
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, keys.new_session(time.time()))
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    await _action(request)
    response = RedirectResponse("/ui", status_code=303)
    clear_cookie(response)
    return response


# --- timeline


@router.get("")
async def timeline(request: Request) -> HTMLResponse:
    q = request.query_params
    wanted = decided.TimelineFilter(
        source=q.get("source") or None,
        kind=q.get("kind") or None,
        outcome=q.get("outcome") or None,
        pipeline=q.get("pipeline") or None,
        # Printable text only: PostgreSQL refuses NUL, and no id or reason holds control bytes.
        text="".join(c for c in (q.get("q") or "")[:200] if c.isprintable()) or None,
    )
    # Older events a page of TIMELINE_LIMIT at a time (?page=1 is the second newest hundred).
    number = int(q["page"]) if q.get("page", "").isdigit() and len(q["page"]) < 7 else 0
    services = _services(request)
    rows = await run_in_threadpool(
        _read,
        services,
        decided.timeline,
        wanted,
        queries.TIMELINE_LIMIT + 1,  # one more: whether there is an older page
        number * queries.TIMELINE_LIMIT,
    )
    older = None
    if len(rows) > queries.TIMELINE_LIMIT:
        rows = rows[: queries.TIMELINE_LIMIT]
        kept = {k: v for k, v in q.items() if k not in ("page", "partial", "msg", "sig")}
        older = f"/ui?{urlencode({**kept, 'page': number + 1})}"
    template = "_timeline_rows.html" if q.get("partial") else "timeline.html"
    return page(
        request,
        template,
        rows=rows,
        older=older,
        newer=number > 0,
        wanted=wanted,
        sources=sorted(SOURCES),
        kinds=("code", "data", "drift", "manual"),
        outcomes=queries.OUTCOMES,
        pipelines=[p.name for p in services.rules().pipelines],
    )


# --- decisions


def _decision_page(services: Services, decision_id: str) -> dict[str, Any] | None:
    rules = services.rules()
    with services.engine.connect() as conn:
        decision = decided.get_decision(conn, decision_id)
        if decision is None:
            return None
        stored = decided.events_of_decision(conn, decision_id)
        policy = decided.decision_policy(conn, decision_id)
        held = pauses.paused(conn)
        run = tracked.get_run(conn, decision["run_id"]) if decision["run_id"] else None
        policy_now = None
        if policy and decision["pipeline"]:
            # What the policy would say if this decision were admitted now (explain's question).
            verdict, queued = verdict_for(
                conn, decision["pipeline"], Policy(**policy), services.clock(), decision_id
            )
            policy_now = {
                "verdict": type(verdict).__name__.lower(),
                "reason": getattr(verdict, "reason", "would run now"),
                "queued": queued,
            }
    covered = [
        {
            "event": event,
            "line": queries.subject_line(event.kind.value, asdict(event.subject)),
            "reason": queries.event_reason(event, rules),
            "triggers": queries.trigger_verdicts(event, rules),
        }
        for event in stored
    ]
    return {
        "decision": decision,
        "policy": policy,
        "covered": covered,
        "params": queries.param_origins(
            decision, stored, rules, run.params if run is not None else None
        ),
        "paused": decision["trigger"] in held if decision["trigger"] else False,
        "policy_now": policy_now,
    }


@router.get("/decisions/{decision_id}")
async def decision_page(request: Request, decision_id: str = DecisionId) -> HTMLResponse:
    data = await run_in_threadpool(_decision_page, _services(request), decision_id)
    if data is None:
        return page(request, "missing.html", 404, what=f"decision {decision_id}")
    return page(request, "decision.html", **data)


@router.post("/decisions/{decision_id}/cancel")
async def decision_cancel(request: Request, decision_id: str = DecisionId) -> Response:
    await _action(request)
    services = _services(request)
    result = await run_in_threadpool(
        cancel_decision, services.engine, decision_id, services.clock()
    )
    message = result.detail if result is not None else "no such decision"
    return _back(request, f"/ui/decisions/{decision_id}", message)


# --- runs


@router.get("/runs")
async def runs_page(request: Request) -> HTMLResponse:
    services = _services(request)
    items = await run_in_threadpool(_read, services, tracked.list_runs, None, None, 100, 0)
    return page(request, "runs.html", runs=items)


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str = RunId) -> HTMLResponse:
    services = _services(request)
    run = await run_in_threadpool(_read, services, run_lineage, run_id)
    if run is None:
        return page(request, "missing.html", 404, what=f"run {run_id}")
    row = await run_in_threadpool(_read, services, tracked.get_run, run_id)
    path = logs.log_file(row, services.settings.runs_dir)
    signed_in = session(request, _keys(services)) is not None
    steps = []
    if path is not None and signed_in:
        text = await run_in_threadpool(logs.read_from, path, 0, 8 * 1024 * 1024)
        steps = logs.steps(text.decode(errors="replace"))
    return page(
        request,
        "run.html",
        run=run,
        has_log=path is not None,
        steps=steps,
        active=run["state"] in tracked.ACTIVE_STATES,
    )


@router.get("/runs/{run_id}/log")
async def run_log(request: Request, run_id: str = RunId) -> Response:
    services = _services(request)
    if session(request, _keys(services)) is None:
        raise HTTPException(403, detail="sign in to read run logs")
    row = await run_in_threadpool(_read, services, tracked.get_run, run_id)
    path = logs.log_file(row, services.settings.runs_dir) if row is not None else None
    if path is None:
        raise HTTPException(404, detail="this run keeps no log here")

    def finished() -> bool:
        current = _read(services, tracked.get_run, run_id)
        return current is None or current.state in logs.FINISHED

    return StreamingResponse(logs.follow(path, 0, finished), media_type="text/plain")


@router.post("/runs/{run_id}/cancel")
async def run_cancel(request: Request, run_id: str = RunId) -> Response:
    await _action(request)
    services = _services(request)
    try:
        result = await run_in_threadpool(
            cancel_run,
            services.engine,
            services.backend,
            run_id,
            services.clock(),
            follow_run,
        )
    except TriggerError as exc:
        return _back(request, f"/ui/runs/{run_id}", f"the backend refused: {exc}")
    message = result.detail if result is not None else "no such run"
    return _back(request, f"/ui/runs/{run_id}", message)


# --- models, pipelines, rules, dead letters


@router.get("/models")
async def models_page(request: Request) -> HTMLResponse:
    services = _services(request)
    found = await run_in_threadpool(
        _read, services, queries.models_with_lineage, services.models.models_root
    )
    return page(request, "models.html", models=found, root=services.models.models_root)


@router.get("/pipelines")
async def pipelines_page(request: Request) -> HTMLResponse:
    services = _services(request)
    known = await run_in_threadpool(_read, services, versions.pipelines)
    configured = {p.name: p for p in services.rules().pipelines}
    return page(request, "pipelines.html", known=known, configured=configured)


@router.post("/pipelines/{name}/trigger")
async def pipeline_trigger(request: Request, name: str = TriggerName) -> Response:
    """A manual trigger from the console: stored like POST /trigger, then decided by the worker."""
    form = await _action(request)
    services = _services(request)
    body = {"pipeline": name, "reason": (form.get("reason") or "from the console")[:500]}
    try:
        parsed = SOURCES["manual"].parse(
            {"x-requested-by": "console"}, json.dumps(body).encode(), utcnow()
        )
        results = await services.inbox.store_async(parsed)
    except TriggerError as exc:
        return _back(request, "/ui/pipelines", f"refused: {exc}")
    services.worker_wakeup()
    event_id = results[0].event_id
    query = {"q": event_id, **_signed_message(request, f"stored {event_id}")}
    return RedirectResponse(f"/ui?{urlencode(query)}", 303)


@router.get("/rules")
async def rules_page(request: Request) -> HTMLResponse:
    status = await run_in_threadpool(rules_status, _services(request))
    return page(request, "rules.html", status=status)


@router.post("/triggers/{name}/{verb}")
async def trigger_pause(request: Request, verb: str, name: str = TriggerName) -> Response:
    form = await _action(request)
    if verb not in ("pause", "resume"):
        raise HTTPException(404, detail="pause or resume")
    reason = (form.get("reason") or "")[:500] or None
    try:
        state = await run_in_threadpool(
            set_paused, _services(request), name, verb == "pause", reason
        )
    except HTTPException as exc:
        return _back(request, "/ui/rules", str(exc.detail))
    return _back(request, "/ui/rules", f"{state.name}: {'paused' if state.paused else 'active'}")


def _dead(services: Services) -> dict[str, Any]:
    items = services.inbox.list(None, None, "dead", 200, 0)
    with services.engine.connect() as conn:
        dead_decisions = decided.list_decisions(conn, None, "dead", None, 100, 0)
    return {"events": items, "decisions": dead_decisions}


@router.get("/dead")
async def dead_page(request: Request) -> HTMLResponse:
    data = await run_in_threadpool(_dead, _services(request))
    return page(request, "dead.html", **data)


@router.post("/events/{event_id}/replay")
async def replay(
    request: Request, event_id: str = PathParam(max_length=256, pattern=r"^[^\x00-\x1f]+$")
) -> Response:
    await _action(request)
    services = _services(request)
    exists = await run_in_threadpool(_read, services, inbox_reads.is_stored, event_id)
    if not exists:
        return _back(request, "/ui/dead", f"no event {event_id}")
    if not await run_in_threadpool(services.inbox.replay, event_id):
        return _back(request, "/ui/dead", f"{event_id} is still in flight; nothing replayed")
    services.worker_wakeup()
    return _back(request, "/ui/dead", f"{event_id} sent through again")
