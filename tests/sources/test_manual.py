"""POST /trigger: a person asks for a run."""

from __future__ import annotations

from typing import Any

import pytest

from trigger_service.errors import RejectedInput
from trigger_service.events import EventKind, ManualSubject, make_event_id
from trigger_service.sources.manual import source

from .helpers import RECEIVED, body_of


def test_full_request() -> None:
    headers = {"idempotency-key": "deploy-42", "x-requested-by": "alice"}
    body = {
        "pipeline": "churn",
        "version": "abc123",
        "params": {"epochs": 3, "lr": 0.1, "name": "x", "shuffle": True},
        "reason": "hotfix",
    }
    [event] = source.parse(headers, body_of(body), RECEIVED)
    assert (event.id, event.kind, event.source, event.delivery_id) == (
        make_event_id("manual", "deploy-42"),
        EventKind.MANUAL,
        "manual",
        "deploy-42",
    )
    assert event.subject == ManualSubject(
        pipeline="churn",
        version="abc123",
        params={"epochs": 3, "lr": 0.1, "name": "x", "shuffle": True},
        reason="hotfix",
        requested_by="alice",
    )


def test_minimal_request_defaults() -> None:
    [event] = source.parse({}, b'{"pipeline": "churn"}', RECEIVED)
    assert event.subject == ManualSubject(pipeline="churn")
    assert event.delivery_id is None


def test_idempotency_key_makes_a_retry_the_same_event() -> None:
    body = b'{"pipeline": "churn"}'
    keyed = [source.parse({"idempotency-key": "k"}, body, RECEIVED)[0].id for _ in range(2)]
    fresh = [source.parse({}, body, RECEIVED)[0].id for _ in range(2)]
    assert keyed[0] == keyed[1]
    assert fresh[0] != fresh[1]  # without a key, every request is a new trigger
    assert all(i.startswith("manual-") for i in (*keyed, *fresh))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "missing field pipeline"),
        ({"pipeline": ""}, "missing field pipeline"),
        ({"pipeline": 3}, "field pipeline must be a string"),
        ({"pipeline": "p", "paramz": {}}, "unknown field"),
        ({"pipeline": "p", "params": []}, "field params must be an object"),
        ({"pipeline": "p", "params": {"a": [1]}}, "params.'a' must be a string, number or boolean"),
        (
            {"pipeline": "p", "params": {"a": None}},
            "params.'a' must be a string, number or boolean",
        ),
        ({"pipeline": "p", "version": 1}, "field version must be a string"),
        ({"pipeline": "p", "reason": ["x"]}, "field reason must be a string"),
        (["churn"], "expected a JSON object, got list"),
    ],
)
def test_bad_requests_name_the_problem(body: Any, message: str) -> None:
    with pytest.raises(RejectedInput) as caught:
        source.parse({}, body_of(body), RECEIVED)
    assert str(caught.value).startswith("manual trigger: ")
    assert message in str(caught.value)
