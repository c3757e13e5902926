"""Webhook routes: read the body within the limit, verify, parse, store, and only then answer.

202: at least one new event stored (ids listed). 200: a redelivery or a replayed body
(`duplicate: true`; api.replay), or a delivery of no interest (`ignored: true` with the
reason). 401/400/408/413/503: see api.errors; reading a body before its signature is checked:
api.intake; the OpenAPI description of these answers: api.openapi. The routes are the
registry's (`SOURCES`): each source's `route`, `summary` and `media_types`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from trigger_service.api.intake import ByteBudget, read_body, shared_budget, unverified
from trigger_service.api.openapi import WEBHOOK_RESPONSES, ManualRequest, request_body
from trigger_service.api.replay import ReplayGuard
from trigger_service.errors import (
    BodyTimeout,
    Ignored,
    PayloadTooLarge,
    RejectedInput,
    TemporaryError,
    Unauthorized,
)
from trigger_service.events import Event, ManualSubject, utcnow
from trigger_service.metrics import ALERTS_TRUNCATED, EVENTS_RECEIVED, REQUEST_SECONDS
from trigger_service.service import Services
from trigger_service.sources import SOURCES, truncated_groups
from trigger_service.validation import checked_events, reads_rules

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

OUTCOMES: list[tuple[type[Exception], str]] = [
    (Unauthorized, "unauthorized"),
    (PayloadTooLarge, "too_large"),
    (BodyTimeout, "timeout"),
    (TemporaryError, "busy"),
    (RejectedInput, "rejected"),
    (Ignored, "ignored"),
]


async def receive(name: str, request: Request, services: Services) -> Response:
    started = time.perf_counter()
    try:
        response = await _receive(name, request, services)
    except Exception as exc:
        outcome = next((o for kind, o in OUTCOMES if isinstance(exc, kind)), "error")
        EVENTS_RECEIVED.labels(name, outcome).inc()
        log.info("%s delivery %s: %s", name, outcome, exc, extra={"source": name})
        raise
    finally:
        REQUEST_SECONDS.labels(name).observe(time.perf_counter() - started)
    return response


async def _receive(name: str, request: Request, services: Services) -> Response:
    source = SOURCES[name]
    settings = services.settings
    async with unverified(_budget(request, settings.max_unverified_bytes)) as claim:
        # Each sender's own cap: git pushes (a long branch merged) may be far larger.
        limit = getattr(settings, source.max_body_setting)
        body = await read_body(request, limit, settings.body_timeout_seconds, claim)
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = settings.secret_for(name)
        if secret is not None:
            source.verify(headers, body, secret)
        elif not settings.allow_unauthenticated:
            raise Unauthorized(
                f"the {name} route has no secret configured and refuses every request"
            )
    parsed = source.parse(headers, body, utcnow())
    if reads_rules(parsed):
        # Off the event loop: the file may have changed, and parsing a large rules file takes
        # seconds (about 12 s for 1 MB of YAML here) that every other request would wait.
        parsed = await run_in_threadpool(checked_events, parsed, services.rules)
    guard = _replays(request, services)
    earlier = guard.check(name, body, [event.id for event in parsed])
    if earlier is not None:
        ids = list(earlier)
        # The earlier delivery may still be waiting for its commit, or have failed (503): a
        # 2xx for its ids is a promise only once they are stored.
        if not await run_in_threadpool(services.inbox.all_stored, ids):
            raise TemporaryError(
                "an earlier delivery of this body is not stored yet; retry later", 5.0
            )
        EVENTS_RECEIVED.labels(name, "duplicate").inc()
        log.info("%s delivery replays an earlier body: one event", name, extra={"source": name})
        answer = {"event_ids": ids, "accepted": [], "duplicates": ids, "duplicate": True}
        return JSONResponse({**answer, "replay": True}, status_code=200)
    try:
        results = await services.inbox.store_async(parsed)
    except BaseException:
        guard.forget(name, body)  # not stored: a retry of this body must be stored
        raise
    new = [r.event_id for r in results if r.new]
    seen = [r.event_id for r in results if not r.new]
    if seen and reads_rules(parsed):
        await run_in_threadpool(_same_request, services, parsed, set(seen))
    EVENTS_RECEIVED.labels(name, "accepted" if new else "duplicate").inc()
    for event_id in new:
        log.info("event stored", extra={"event_id": event_id, "source": name})
    _warn_truncated(name, parsed)
    payload: dict[str, Any] = {"event_ids": new + seen, "accepted": new, "duplicates": seen}
    if new:
        services.worker_wakeup()
        return JSONResponse(payload, status_code=202)
    return JSONResponse({**payload, "duplicate": True}, status_code=200)


def _same_request(services: Services, parsed: list[Event], seen: set[str]) -> None:
    """RejectedInput when an Idempotency-Key already stored stands for a different manual
    request: answering "duplicate" would tell the person their new parameters will run."""
    for event in parsed:
        if event.id not in seen or not isinstance(event.subject, ManualSubject):
            continue
        stored = services.inbox.get_event(event.id)
        if stored is None or not isinstance(stored.subject, ManualSubject):
            continue
        if replace(stored.subject, requested_by=None) != replace(event.subject, requested_by=None):
            raise RejectedInput(
                f"Idempotency-Key: {event.delivery_id!r:.80} was already used for a different "
                "request (pipeline, version, params or reason differ); send a new key"
            )


def _warn_truncated(name: str, parsed: list[Event]) -> None:
    # Alerts cut by the sender's max_alerts reached nobody: a drift alert may be among them.
    for group, cut in truncated_groups(parsed).items():
        ALERTS_TRUNCATED.labels(name).inc(cut)
        log.warning(
            "%s cut %d alert(s) from group %s (max_alerts): they were not delivered",
            name,
            cut,
            group[:200],
            extra={"source": name, "event_id": parsed[0].id},
        )


def _budget(request: Request, limit: int) -> ByteBudget:
    """The application's one budget of unverified bytes (made on first use)."""
    return shared_budget(request.app.state, limit)


def _replays(request: Request, services: Services) -> ReplayGuard:
    state = request.app.state
    guard: ReplayGuard | None = getattr(state, "replay_guard", None)
    if guard is None:
        guard = state.replay_guard = ReplayGuard(
            services.settings.replay_window_seconds, services.clock
        )
    return guard


def _webhook(name: str) -> Any:
    # No Depends(): resolving dependencies is a measurable share of a webhook's CPU.
    async def handler(request: Request) -> Response:
        return await receive(name, request, request.app.state.services)

    handler.__name__ = f"webhook_{name}"
    return handler


# A person's request has a model of its own; a sender's payload is the sender's to define.
_BODY_MODELS = {"manual": ManualRequest}


def _request_schema(name: str) -> dict[str, Any]:
    if name in _BODY_MODELS:
        return {"$ref": f"#/components/schemas/{_BODY_MODELS[name].__name__}"}
    return {"type": "object", "description": f"The {name} payload, as the sender sends it"}


# One POST route per registered sender: a new source in the registry is a new route.
for _name, _source in SOURCES.items():
    router.add_api_route(
        _source.route,
        _webhook(_name),
        methods=["POST"],
        status_code=202,
        summary=_source.summary,
        responses=WEBHOOK_RESPONSES,
        openapi_extra=request_body(_request_schema(_name), *_source.media_types),
    )


@router.head(
    "/webhooks/storage",
    summary="MinIO probes the endpoint with HEAD before use",
    response_class=Response,
    responses={200: {"description": "The route exists (no body)"}},
)
async def storage_probe() -> Response:
    return Response(status_code=200)
