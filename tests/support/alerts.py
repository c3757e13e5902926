"""Drift alert webhook bodies as the senders post them, for tests.

    alertmanager_notification(alertmanager_alert("songs"), alertmanager_alert("albums"))
    grafana_notification(grafana_alert("songs", "resolved"), truncated=4)

Alertmanager's webhook (version 4): one notification per alert group, its `status` firing while
any alert fires; an alert's fingerprint is Alertmanager's hash of its labels (so a repeat and
the resolution of one alert share it) and a firing alert ends at "0001-01-01T00:00:00Z".
Grafana-managed alerting posts the same shape plus its own fields; its builders start from a
notification captured from Grafana (tests/fixtures/payloads/grafana/firing-one.json).

What is posted *to* Alertmanager (its API v2 alerts) is built in tests/support/alertmanager.py.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from trigger_service.sources.alertmanager import label_fingerprint

GROUP_KEY = '{}:{alertname="ModelDrift"}'
NOT_ENDED = "0001-01-01T00:00:00Z"
PAYLOADS = Path(__file__).parents[1] / "fixtures" / "payloads"
GRAFANA_CASE: dict[str, Any] = json.loads((PAYLOADS / "grafana" / "firing-one.json").read_text())


def alertmanager_alert(
    model: str = "songs",
    *,
    status: str = "firing",
    starts: str = "2026-11-25T07:00:00Z",
    ends: str | None = None,
    alertname: str = "ModelDrift",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One alert of a notification; a resolved one ends an hour after `starts` by default."""
    labels = {"alertname": alertname, "model": model}
    if ends is None and status == "resolved":
        ends = (datetime.fromisoformat(starts) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": starts,
        "endsAt": ends or NOT_ENDED,
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": label_fingerprint(labels),
    }


def alertmanager_notification(
    *alerts: dict[str, Any], truncated: int = 0, receiver: str = "trigger"
) -> dict[str, Any]:
    """The webhook body for `alerts`, grouped by alertname as the chart's route does."""
    common = dict(alerts[0]["labels"]) if alerts else {}
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": truncated,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": common["alertname"]} if "alertname" in common else {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [copy.deepcopy(a) for a in alerts],
    }


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
