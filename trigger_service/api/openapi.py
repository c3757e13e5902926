"""The OpenAPI document as the service answers: every status a route returns, with its body.

FastAPI documents a 422 that this service never returns (api.errors turns validation errors
into 400) and knows nothing of the statuses that dependencies and the domain error mapping
produce. `install(app)` fixes the generated document once, from facts about each route:

    any parameter or request body    400 ErrorBody (a value refused, naming the field)
    operator routes (an Authorization header parameter, api.deps.require_operator) 401 ErrorBody
    a path with an {id}, /explain    404 Detail ({"detail": ...}, FastAPI's HTTPException)
    POST /events/{event_id}/replay   409 Detail (the event is still in flight)
    every route but /healthz         503 ErrorBody (the store unavailable, or busy)
    every POST                       408, 413 ErrorBody (api.body_limit)
    /metrics                         text/plain (Prometheus exposition format)

The webhook routes declare their own bodies and answers (api.webhooks).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="What was refused and why, naming the field.")


class Detail(BaseModel):
    """404 and 409 of the read and replay routes (FastAPI's HTTPException body)."""

    detail: str


class Accepted(BaseModel):
    """202: at least one new event stored."""

    event_ids: list[str]
    accepted: list[str]
    duplicates: list[str]


class Duplicate(Accepted):
    """200: every event was already stored (a redelivery, or a replayed body)."""

    duplicate: bool
    replay: bool | None = Field(None, description="The same body within the replay window.")


class IgnoredDelivery(BaseModel):
    """200: a valid delivery of no interest (ping, test delivery, tag push...)."""

    ignored: bool
    reason: str


class ManualRequest(BaseModel):
    """POST /trigger's body."""

    pipeline: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="A pipeline of the rules file that a manual trigger allows.",
    )
    version: str | None = Field(None, description="A registered version, a full sha, a branch.")
    params: dict[str, str | int | float | bool] | None = Field(
        None, description="Parameters the pipeline declares, of its defaults' types."
    )
    reason: str | None = None


def error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    return {"description": description, "model": model}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("Refused: malformed body, bad header or value (the field is named)"),
    401: error("Missing or wrong signature or token"),
    408: error("The body did not arrive within the read timeout"),
    413: error("The body is over the size limit"),
    503: error("Too many unverified bytes in flight, or the store is unavailable; retry"),
}
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "New events stored (ids listed)", "model": Accepted},
    200: {
        "description": "A redelivery or replay (`duplicate`), or of no interest (`ignored`)",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/Duplicate"},
                        {"$ref": "#/components/schemas/IgnoredDelivery"},
                    ]
                }
            }
        },
    },
    **ERRORS,
}


# Routes without an {id} in the path that still look one up (explain's `event_id`).
LOOKS_UP = frozenset({"/explain"})


def request_body(schema: dict[str, Any], *media: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {m: {"schema": schema} for m in media}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _truthful(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _truthful(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, Detail, Accepted, Duplicate, IgnoredDelivery, ManualRequest):
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("400", _ref("Refused: a value is invalid", "ErrorBody"))
            if _takes_token(operation):
                responses.setdefault("401", _ref("Missing or wrong token", "ErrorBody"))
            if "{" in path or path in LOOKS_UP:
                responses.setdefault("404", _ref("Not found", "Detail"))
            if path.endswith("/replay"):
                responses.setdefault("409", _ref("Still in flight: nothing replayed", "Detail"))
            if method in ("post", "put", "patch"):  # api.body_limit, before the route runs
                responses.setdefault("408", _ref("The body did not arrive in time", "ErrorBody"))
                responses.setdefault("413", _ref("The body is over the size limit", "ErrorBody"))
            if path != "/healthz":
                responses.setdefault("503", _ref("The store is unavailable", "ErrorBody"))
    metrics = document["paths"].get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _takes_token(operation: dict[str, Any]) -> bool:
    """Operator routes (api.deps.require_operator) read the Authorization header."""
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == "authorization"
        for p in operation.get("parameters", [])
    )


def _ref(description: str, model: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
    }
