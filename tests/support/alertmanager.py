"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback, for tests.

    with alertmanager(tmp_path, webhook_url, secret) as url:
        post_alerts(url, [alert("songs", starts)])

Its route groups by alertname and re-sends every 2 s (repeat_interval), with send_resolved,
bearer credentials and the webhook at `webhook_url`; `max_alerts=N` cuts each notification to
N alerts (0: no limit), counting the rest in `truncatedAlerts`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.server import free_port
from tests.support.waiting import wait_for

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
MISSING = "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
DEADLINE_SECONDS = 15

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
      - url: {url}
        send_resolved: true
        max_alerts: {max_alerts}
        http_config:
          authorization:
            credentials: {secret}
"""


@contextmanager
def alertmanager(
    tmp_path: Path, webhook_url: str, secret: str, max_alerts: int = 0
) -> Iterator[str]:
    """Start Alertmanager notifying `webhook_url`; yields its own URL."""
    assert BINARY is not None, MISSING
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=webhook_url, secret=secret, max_alerts=max_alerts))
    url = f"http://127.0.0.1:{free_port()}"
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'alertmanager-data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--cluster.listen-address=",  # no gossip: no settle wait, no extra ports
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: _ready(url), "Alertmanager to be ready", DEADLINE_SECONDS, log=log_path
            )
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


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
