"""Drift alert webhook bodies as the senders post them, for tests.

    alertmanager_notification(alertmanager_alert("songs"), alertmanager_alert("albums"))
    grafana_notification(grafana_alert("songs", "resolved"), truncated=4)

Alertmanager's webhook (version 4) is built by the demo's builders (demo/payloads.py), imported
here so tests name one module. Grafana-managed alerting posts the same shape plus its own
fields; its builders start from a notification captured from Grafana
(tests/fixtures/payloads/grafana/firing-one.json).

What is posted *to* Alertmanager (its API v2 alerts) is built in tests/support/alertmanager.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from demo.payloads import alertmanager_alert, alertmanager_notification
from trigger_service.sources.alertmanager import label_fingerprint

__all__ = [
    "alertmanager_alert",
    "alertmanager_notification",
    "body",
    "grafana_alert",
    "grafana_notification",
]

PAYLOADS = Path(__file__).parents[1] / "fixtures" / "payloads"
GRAFANA_CASE: dict[str, Any] = json.loads((PAYLOADS / "grafana" / "firing-one.json").read_text())


def body(notification: dict[str, Any]) -> bytes:
    """The bytes a sender posts (signatures and parsers work on raw bytes)."""
    return json.dumps(notification).encode()


def grafana_alert(
    model: str = "songs", status: str = "firing", starts: str = "2024-06-03T08:00:00.000Z"
) -> dict[str, Any]:
    """The captured Grafana alert for another model, status or start."""
    alert = copy.deepcopy(GRAFANA_CASE["alerts"][0])
    alert["labels"]["model"] = model
    alert["fingerprint"] = label_fingerprint(alert["labels"])
    alert["status"] = status
    alert["startsAt"] = starts
    if status == "resolved":
        alert["endsAt"] = "2024-06-03T09:00:00Z"
    return alert


def grafana_notification(*alerts: dict[str, Any], truncated: int = 0) -> dict[str, Any]:
    """The captured Grafana notification carrying `alerts` instead of its own."""
    notification = copy.deepcopy(GRAFANA_CASE)
    notification["alerts"] = [copy.deepcopy(a) for a in alerts]
    notification["truncatedAlerts"] = truncated
    resolved = all(a["status"] == "resolved" for a in alerts)
    notification["status"] = "resolved" if resolved else "firing"
    return notification
