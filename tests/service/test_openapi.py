"""The OpenAPI document tells the truth, and a bounded schemathesis run against the application
finds no server error and no answer the document does not describe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.service.conftest import Build
from trigger_service.api import create_app

AUTH = {"Authorization": "Bearer manual-token"}


@pytest.fixture
def app(build: Build) -> FastAPI:
    return create_app(build(), start_worker=False)


@pytest.fixture
def document(app: FastAPI) -> dict:
    with TestClient(app) as client:
        return client.get("/openapi.json").json()


def test_no_phantom_422_and_every_error_answer_is_described(document: dict) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "400" in responses, (method, path)
    github = document["paths"]["/webhooks/github"]["post"]
    assert {"200", "202", "400", "401", "408", "413", "503"} <= set(github["responses"])
    assert "application/json" in github["requestBody"]["content"]
    trigger = document["paths"]["/trigger"]["post"]
    schema = trigger["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ManualRequest"}
    assert "401" in document["paths"]["/explain"]["post"]["responses"]
    assert "404" in document["paths"]["/events/{event_id}"]["get"]["responses"]
    assert "409" in document["paths"]["/events/{event_id}/replay"]["post"]["responses"]
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def checked(operation: Any) -> Callable[[], None]:
    """A hypothesis test of one operation: a few generated requests with the operator token."""
    # Whether a well-formed manual request is accepted depends on the rules in force (which
    # pipelines exist, which parameters they declare): a 400 there is right.
    stateful = operation.label in ("POST /trigger", "POST /explain")
    excluded = [positive_data_acceptance] if stateful else []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=6,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, excluded_checks=excluded)

    return check


def test_the_api_answers_as_documented(app: FastAPI) -> None:
    """Each operation: no 5xx, every status, header, content type and body as the document
    says. Schemathesis' pytest plugin does not load under pytest 9, so the operations are
    driven through its Python API and hypothesis directly."""
    failures: list[str] = []
    with TestClient(app):  # runs the lifespan
        api = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in api.get_all_operations()]
        assert len(operations) >= 15
        for operation in operations:
            try:
                checked(operation)()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)


def test_bodies_refused_before_the_route_are_documented_and_shaped_as_documented(
    app: FastAPI, document: dict
) -> None:
    """api.body_limit answers 408/413 on every POST; FastAPI's own 400 for a body that is not
    UTF-8 said {"detail": ...} where the document promises {"error": ...}."""
    for path, item in document["paths"].items():
        if "post" in item:
            assert {"408", "413"} <= set(item["post"]["responses"]), path
    with TestClient(app) as client:
        bad = client.post(
            "/explain",
            content=b'{"source": "\xff"}',
            headers={**AUTH, "Content-Type": "application/json"},
        )
        big = client.post("/explain", content=b" " * (2 * 1024 * 1024), headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"].startswith("body: ")
    assert big.status_code == 413 and "limit" in big.json()["error"]
