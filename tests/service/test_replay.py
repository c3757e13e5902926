"""The replay window: a captured signed body sent again under a new delivery id is one event."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.service.conftest import Build, FakeClock
from tests.support.github import DOCS_PUSH, signature
from trigger_service.api import create_app
from trigger_service.api.replay import ReplayGuard

BODY = json.dumps(DOCS_PUSH).encode()


def deliver(client: TestClient, delivery: str) -> tuple[int, dict]:
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature(BODY, "gh-secret"),
        "Content-Type": "application/json",
    }
    answer = client.post("/webhooks/github", content=BODY, headers=headers)
    return answer.status_code, answer.json()


def test_the_same_body_under_new_delivery_ids_is_one_event_within_the_window(
    build: Build, clock: FakeClock
) -> None:
    services = build()
    with TestClient(create_app(services, start_worker=False)) as client:
        status, first = deliver(client, "d-1")
        assert status == 202
        clock.advance(299)
        status, replay = deliver(client, "d-2-forged")
        assert status == 200
        assert replay["replay"] is True and replay["event_ids"] == first["accepted"]
        assert services.inbox.depth()["pending"] == 1

        status, again = deliver(client, "d-1")  # the forge's own redelivery: same event
        assert status == 200 and again["event_ids"] == first["accepted"]

        clock.advance(302)  # beyond the window from the first delivery
        status, later = deliver(client, "d-3")
        assert status == 202 and later["accepted"] != first["accepted"]
        assert services.inbox.depth()["pending"] == 2


def test_a_window_of_zero_turns_it_off(build: Build) -> None:
    services = build(replay_window_seconds=0)
    with TestClient(create_app(services, start_worker=False)) as client:
        assert deliver(client, "d-1")[0] == 202
        assert deliver(client, "d-2")[0] == 202
    assert services.inbox.depth()["pending"] == 2


def test_a_person_may_trigger_the_same_thing_twice(build: Build) -> None:
    services = build()
    with TestClient(create_app(services, start_worker=False)) as client:
        for _ in range(2):
            answer = client.post(
                "/trigger",
                json={"pipeline": "songs"},
                headers={"Authorization": "Bearer manual-token"},
            )
            assert answer.status_code == 202
    assert services.inbox.depth()["pending"] == 2


def test_a_body_whose_store_failed_is_forgotten() -> None:
    now = [0.0]
    guard = ReplayGuard(window=300, clock=lambda: now[0], max_entries=2)
    assert guard.check("github", b"a", ["e1"]) is None
    assert guard.check("github", b"a", ["e2"]) == ("e1",)
    assert guard.check("gitea", b"a", ["e3"]) is None  # per route
    guard.forget("github", b"a")
    assert guard.check("github", b"a", ["e2"]) is None
    assert guard.check("github", b"b", ["e4"]) is None  # over max_entries: the oldest goes
    assert guard.check("gitea", b"a", ["e9"]) is None
