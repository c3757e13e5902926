"""The one place domain errors become HTTP answers. Anything unexpected is a logged 500 with no
detail, but every error a sender can provoke is mapped here first."""

from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from trigger_service.errors import (
    BodyTimeout,
    Ignored,
    PayloadTooLarge,
    PermanentError,
    RejectedInput,
    TemporaryError,
    Unauthorized,
)
from trigger_service.store_errors import RETRY_AFTER_SECONDS, classify

log = logging.getLogger(__name__)

STATUS: list[tuple[type[Exception], int]] = [
    (Unauthorized, 401),
    (PayloadTooLarge, 413),
    (BodyTimeout, 408),
    (RejectedInput, 400),
    (TemporaryError, 503),
    (PermanentError, 502),
]


def status_for(exc: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def install(app: FastAPI) -> None:
    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        headers = None
        if status == 401:
            # Both schemes: SNS (S3 notifications) sends Basic credentials only after a challenge.
            headers = {"WWW-Authenticate": 'Bearer, Basic realm="trigger-service"'}
        elif status == 503:
            delay = getattr(exc, "delay", None) or RETRY_AFTER_SECONDS
            headers = {"Retry-After": str(max(1, round(delay)))}
        return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)

    async def store_error(request: Request, exc: Exception) -> JSONResponse:
        # A store error that reached the edge unmapped (a read, a replay): classified here.
        domain = classify(exc)
        if domain is None:
            log.error("unexpected store error", exc_info=exc)
            return JSONResponse({"error": "internal error"}, status_code=500)
        return await domain_error(request, domain)

    async def ignored(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"ignored": True, "reason": str(exc)}, status_code=200)

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        return JSONResponse({"error": "; ".join(problems)}, status_code=400)

    async def http_error(request: Request, exc: Exception) -> Response:
        # FastAPI's own 400 for a body it cannot decode (invalid UTF-8) said {"detail": ...};
        # every 400 of this service is {"error": ...}, as documented.
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            return JSONResponse({"error": f"body: {exc.detail}"}, status_code=400)
        return await http_exception_handler(request, exc)

    for kind, _status in STATUS:
        app.add_exception_handler(kind, domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(SQLAlchemyError, store_error)
    app.add_exception_handler(sqlite3.Error, store_error)
    app.add_exception_handler(Ignored, ignored)
    app.add_exception_handler(RequestValidationError, invalid_request)
