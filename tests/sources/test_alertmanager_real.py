"""A real Alertmanager (Debian's prometheus-alertmanager) notifying a loopback receiver.

Given two firing alerts in one group, Alertmanager notifies, repeats after repeat_interval,
and after one alert is resolved notifies again; every request it made must verify and parse:
repeats give the same Event ids, the resolution a new one.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from trigger_service.errors import Unauthorized
from trigger_service.events import DriftSubject, Event
from trigger_service.sources.alertmanager import label_fingerprint, source

from .helpers import RECEIVED, SECRET

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
DEADLINE_SECONDS = 15

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BINARY is None,
        reason="prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)",
    ),
]

CONFIG = """
route:
  receiver: trigger
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: trigger
    webhook_configs:
      - url: http://127.0.0.1:{port}/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {secret}
"""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: tuple[int, list[Request]]) -> Iterator[str]:
    assert BINARY is not None
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(port=receiver[0], secret=SECRET))
    url = f"http://127.0.0.1:{free_port()}"
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--cluster.listen-address=",  # no gossip: no settle wait, no extra ports
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _ready(url), what="Alertmanager to be ready", log=tmp_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], *, what: str, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            logs = (log / "alertmanager.log").read_text()[-2000:]
            pytest.fail(f"timed out waiting for {what}; Alertmanager log:\n{logs}")
        time.sleep(0.1)


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def alert(model: str, starts: datetime, ends: datetime | None = None) -> dict[str, Any]:
    data = {
        "labels": {"alertname": "ModelDrift", "model": model, "severity": "warning"},
        "annotations": {"summary": f"prediction drift on {model}"},
        "startsAt": starts.isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }
    if ends is not None:
        data["endsAt"] = ends.isoformat()
    return data


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
    alertmanager: str, receiver: tuple[int, list[Request]], tmp_path: Path
) -> None:
    _, requests = receiver
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    post_alerts(alertmanager, [alert("churn", started), alert("fraud", started)])

    # The first notification, then at least one repeat of the unchanged group.
    wait_for(lambda: len(requests) >= 2, what="a notification and its repeat", log=tmp_path)
    post_alerts(
        alertmanager, [alert("churn", started, ends=datetime.now(UTC) - timedelta(seconds=1))]
    )
    wait_for(
        lambda: any(("churn", "resolved") in by_model(events) for events in parsed(requests)),
        what="the resolved notification",
        log=tmp_path,
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
