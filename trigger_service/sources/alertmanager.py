"""Alertmanager webhook notifications (version 4): one drift Event per alert.

An alert's Event id is groupKey + fingerprint + startsAt + status: Alertmanager re-sends a
firing alert every repeat_interval, and those repeats are the same Event; its resolution is a
different one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import DriftSubject, Event, EventKind, make_event_id
from trigger_service.sources._auth import check_authorization
from trigger_service.sources._json import load_object, opt, req, str_dict

WHAT = "alertmanager"
STATUSES = ("firing", "resolved")

# Prometheus' label-set fingerprint (FNV-1a 64 over sorted name, 0xff, value, 0xff).
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint Alertmanager itself gives an alert with these labels."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for byte in (*name.encode(), _SEPARATOR, *labels[name].encode(), _SEPARATOR):
            digest = ((digest ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def _event(alert: Any, group_key: str, received_at: datetime, what: str) -> Event:
    if not isinstance(alert, dict):
        raise RejectedInput(f"{what}: not an object")
    status = req(alert, "status", str, what)
    if status not in STATUSES:
        raise RejectedInput(f"{what}: status must be firing or resolved, not {status!r}")
    labels = str_dict(alert, "labels", what)
    subject = DriftSubject(
        alertname=labels.get("alertname", ""),
        status=status,
        labels=labels,
        annotations=str_dict(alert, "annotations", what),
        fingerprint=opt(alert, "fingerprint", str, what) or label_fingerprint(labels),
        starts_at=req(alert, "startsAt", str, what),
        ends_at=opt(alert, "endsAt", str, what) or "",
        group_key=group_key,
        generator_url=opt(alert, "generatorURL", str, what) or "",
    )
    return Event(
        id=make_event_id("alertmanager", group_key, subject.fingerprint, subject.starts_at, status),
        kind=EventKind.DRIFT,
        source="alertmanager",
        subject=subject,
        received_at=received_at,
    )


class AlertmanagerSource:
    name = "alertmanager"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        # http_config.authorization sends Bearer; basic_auth sends any user with the secret.
        check_authorization(headers, secret, WHAT, basic=True)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        payload = load_object(body, WHAT)
        version = payload.get("version")
        if version != "4":
            raise RejectedInput(f"{WHAT}: unsupported webhook version {version!r:.40}")
        group_key = req(payload, "groupKey", str, WHAT)
        alerts = req(payload, "alerts", list, WHAT)
        if not alerts:
            raise Ignored("notification without alerts")
        return [
            _event(alert, group_key, received_at, f"{WHAT} alerts[{index}]")
            for index, alert in enumerate(alerts)
        ]


source = AlertmanagerSource()
