"""A real Alertmanager (Debian's prometheus-alertmanager) notifying a loopback receiver.

Given two firing alerts in one group, Alertmanager notifies, repeats after repeat_interval,
and after one alert is resolved notifies again; every request it made must verify and parse:
repeats give the same Event ids, the resolution a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.alertmanager import BINARY, MISSING, alert, alertmanager, post_alerts
from tests.support.waiting import wait_for
from trigger_service.errors import Unauthorized
from trigger_service.events import DriftSubject, Event
from trigger_service.sources.alertmanager import label_fingerprint, source

from .helpers import RECEIVED, SECRET

pytestmark = [pytest.mark.slow, pytest.mark.skipif(BINARY is None, reason=MISSING)]

Request = tuple[dict[str, str], bytes]


class Receiver(BaseHTTPRequestHandler):
    requests: list[Request]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[Request]]]:
    requests: list[Request] = []
    handler = type("Handler", (Receiver,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def alertmanager_url(tmp_path: Path, receiver: tuple[int, list[Request]]) -> Iterator[str]:
    webhook = f"http://127.0.0.1:{receiver[0]}/webhooks/alertmanager"
    with alertmanager(tmp_path, webhook, SECRET) as url:
        yield url


def parsed(requests: list[Request]) -> list[list[Event]]:
    return [source.parse(headers, body, RECEIVED) for headers, body in list(requests)]


def by_model(events: list[Event]) -> dict[tuple[str, str], str]:
    """(model, status) -> Event id."""
    found = {}
    for event in events:
        assert isinstance(event.subject, DriftSubject)
        found[(event.subject.labels["model"], event.subject.status)] = event.id
    return found


def test_real_alertmanager_notifications(
    alertmanager_url: str, receiver: tuple[int, list[Request]], tmp_path: Path
) -> None:
    _, requests = receiver
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    post_alerts(alertmanager_url, [alert("churn", started), alert("fraud", started)])

    # The first notification, then at least one repeat of the unchanged group.
    wait_for(
        lambda: len(requests) >= 2,
        "a notification and its repeat",
        log=tmp_path / "alertmanager.log",
    )
    post_alerts(
        alertmanager_url, [alert("churn", started, ends=datetime.now(UTC) - timedelta(seconds=1))]
    )
    wait_for(
        lambda: any(("churn", "resolved") in by_model(events) for events in parsed(requests)),
        "the resolved notification",
        log=tmp_path / "alertmanager.log",
    )

    for headers, body in list(requests):
        assert headers["authorization"] == f"Bearer {SECRET}"
        source.verify(headers, body, SECRET)
        with pytest.raises(Unauthorized):
            source.verify(headers, body, "another-secret")

    notifications = parsed(requests)
    first, repeat = by_model(notifications[0]), by_model(notifications[1])
    assert len(notifications[0]) == 2  # one Event per alert
    assert set(first) == {("churn", "firing"), ("fraud", "firing")}
    assert repeat == first  # a repeat notification is the same Events

    resolved = next(by_model(n) for n in notifications if ("churn", "resolved") in by_model(n))
    assert resolved[("churn", "resolved")] not in first.values()
    assert resolved[("fraud", "firing")] == first[("fraud", "firing")]

    for event in (e for events in notifications for e in events):
        assert isinstance(event.subject, DriftSubject)
        # Our fallback fingerprint is Alertmanager's own.
        assert event.subject.fingerprint == label_fingerprint(event.subject.labels)
        assert event.subject.starts_at.startswith(started.strftime("%Y-%m-%dT%H:%M:%S"))
        assert event.subject.group_key == '{}:{alertname="ModelDrift"}'
