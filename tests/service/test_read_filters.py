"""A misspelt filter on /events or /decisions is a 400 naming the field and the allowed values,
not an empty list that reads as "nothing happened" (`trigger-service events --status deed`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import Build
from trigger_service.api import create_app


@pytest.fixture
def client(build: Build) -> Iterator[TestClient]:
    with TestClient(create_app(build(), start_worker=False)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/events", "status", "deed"),
        ("/events", "kind", "push"),
        ("/events", "source", "github-enterprise"),
        ("/decisions", "outcome", "ran"),
    ],
)
def test_an_unknown_filter_value_is_400_naming_it(
    client: TestClient, path: str, field: str, value: str
) -> None:
    answer = client.get(path, params={field: value})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(f"query.{field}: String should match pattern")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/events", {"status": "dead", "kind": "data", "source": "storage"}),
        ("/decisions", {"outcome": "no_run", "state": "anything", "pipeline": "any"}),
    ],
)
def test_known_values_still_filter(client: TestClient, path: str, params: dict[str, str]) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 200 and answer.json()["items"] == []
