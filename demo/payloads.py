"""Webhook bodies as the senders post them: MinIO's bucket notification and Alertmanager's
webhook (version 4). The demo posts and prints them; tests and benchmarks build theirs here too
(tests/support/alerts.py adds Grafana's, which start from a recorded delivery).

    storage_event("datasets", "songs/new batch.csv", 100)
    alertmanager_notification(alertmanager_alert("songs"), alertmanager_alert("albums"))

Alertmanager sends one notification per alert group, its `status` firing while any alert
fires; an alert's fingerprint is Alertmanager's hash of its labels (so a repeat and the
resolution of one alert share it) and a firing alert ends at "0001-01-01T00:00:00Z".
"""

from __future__ import annotations

import copy
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from trigger_service.sources.alertmanager import label_fingerprint

GROUP_KEY = '{}:{alertname="ModelDrift"}'
NOT_ENDED = "0001-01-01T00:00:00Z"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def storage_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """A MinIO bucket notification for a new object (`size` bytes), as its webhook target posts
    it: the key query-escaped, a new eTag and sequencer each call (so each call is a new event)."""
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": _now(),
                "eventName": "s3:ObjectCreated:Put",
                "userIdentity": {"principalId": "demo"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "demo"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key),
                        "size": size,
                        "eTag": secrets.token_hex(16),
                        "contentType": "text/csv",
                        "sequencer": f"{time.time_ns():X}",
                    },
                },
                "source": {"host": "127.0.0.1", "port": "", "userAgent": "demo"},
            }
        ],
    }


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


def drift_alert() -> dict[str, Any]:
    """The demo's drift alert on the songs model, firing since now, as Alertmanager posts it
    for the chart's ModelDrift rule: that rule's labels (model, severity) and a summary."""
    summary = {"summary": "input drift on songs"}
    alert = alertmanager_alert("songs", starts=_now(), annotations=summary)
    labels = {**alert["labels"], "severity": "warning"}
    alert.update(
        labels=labels,
        generatorURL="http://prometheus.local:9090/graph",
        fingerprint=label_fingerprint(labels),
    )
    notification = alertmanager_notification(alert, receiver="kfp-trigger")
    notification.update(commonAnnotations=summary, externalURL="http://alertmanager.local:9093")
    return notification
