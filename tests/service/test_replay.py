"""The replay window: a captured signed body sent again under a new delivery id is one event."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.service.conftest import Build, FakeClock
from tests.support.github import DOCS_PUSH, signature
from trigger_service.api import create_app
from trigger_service.api.replay import ReplayGuard
from trigger_service.events import utcnow
from trigger_service.sources import SOURCES

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


def test_a_replay_of_a_body_not_stored_yet_is_503_not_a_promise(build: Build) -> None:
    # The first delivery of BODY passed the guard and is still waiting for its commit (or its
    # store failed, answered 503 and was never retried): its ids are not in the inbox.
    services = build()
    headers = {"x-github-event": "push", "x-github-delivery": "d-1"}
    (first,) = SOURCES["github"].parse(headers, BODY, utcnow())
    app = create_app(services, start_worker=False)
    app.state.replay_guard = ReplayGuard(300, services.clock)
    assert app.state.replay_guard.check("github", BODY, [first.id]) is None
    with TestClient(app) as client:
        status, answer = deliver(client, "d-2")
        assert status == 503, answer
        assert "not stored yet" in answer["error"]
        assert services.inbox.depth()["pending"] == 0

        services.inbox.store([first])  # the first delivery commits: now a replay is a 200
        status, answer = deliver(client, "d-2")
        assert status == 200 and answer["replay"] is True
        assert answer["event_ids"] == [first.id]
