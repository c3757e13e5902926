"""An Idempotency-Key makes two identical manual requests one; the same key on a different
request is refused (400), not answered "duplicate" as if the new parameters would run."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import Build
from trigger_service.api import create_app

AUTH = {"Authorization": "Bearer manual-token"}


def trigger(client: TestClient, body: dict, key: str, **headers: str) -> tuple[int, dict]:
    answer = client.post("/trigger", json=body, headers={**AUTH, "Idempotency-Key": key, **headers})
    return answer.status_code, answer.json()


def test_the_same_key_for_another_request_is_refused(build: Build) -> None:
    services = build()
    with TestClient(create_app(services, start_worker=False)) as client:
        status, first = trigger(client, {"pipeline": "songs"}, "k-1")
        assert status == 202
        # The same request again, from another person or with the header spelled anew: one event.
        status, again = trigger(client, {"pipeline": "songs"}, "k-1", **{"X-Requested-By": "bo"})
        assert status == 200 and again["duplicates"] == first["accepted"]

        for other in (
            {"pipeline": "songs", "params": {"model_name": "other"}},
            {"pipeline": "songs", "reason": "another reason"},
            {"pipeline": "songs", "version": "main"},
        ):
            status, answer = trigger(client, other, "k-1")
            assert status == 400, answer
            assert "Idempotency-Key" in answer["error"] and "different" in answer["error"]
        status, other_key = trigger(client, {"pipeline": "songs", "version": "main"}, "k-2")
        assert status == 202 and other_key["accepted"] != first["accepted"]
    assert services.inbox.depth()["pending"] == 2
