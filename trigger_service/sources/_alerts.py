"""Alert notifications in the Alertmanager shape, shared by the alertmanager and grafana sources.

Both senders post a group: `groupKey`, `truncatedAlerts` (alerts cut by `max_alerts`) and
`alerts[]`, each with `status`, `labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`.

    group_events(payload, source=..., what=..., received_at=...) -> list[Event]

One drift Event per alert. Its id is source + groupKey + fingerprint + startsAt + status: a
sender re-sends a firing alert every repeat interval, and those repeats are the same Event; its
resolution is a different one, and so is the next incident (a new startsAt). A cut group's
count is stored on every Event of the delivery (`DriftSubject.truncated_alerts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import DriftSubject, Event, EventKind, make_event_id
from trigger_service.sources._json import opt, req, str_dict

STATUSES = ("firing", "resolved")
MAX_TRUNCATED = 2**63 - 1  # both senders count in a 64-bit integer

# Prometheus' label-set fingerprint (FNV-1a 64 over sorted name, 0xff, value, 0xff).
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint Alertmanager itself gives an alert with these labels (16 hex digits)."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for byte in (*name.encode(), _SEPARATOR, *labels[name].encode(), _SEPARATOR):
            digest = ((digest ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def truncated_count(payload: Mapping[str, Any], what: str) -> int:
    """`truncatedAlerts`: alerts of the group the sender left out (absent: 0).

    Raises RejectedInput for a negative or non-integer count.
    """
    count = opt(payload, "truncatedAlerts", int, what) or 0
    if not 0 <= count <= MAX_TRUNCATED:
        raise RejectedInput(f"{what}: field truncatedAlerts must be between 0 and {MAX_TRUNCATED}")
    return count


def group_events(
    payload: Mapping[str, Any], *, source: str, what: str, received_at: datetime
) -> list[Event]:
    """The drift Events of one notification whose version the caller has checked.

    Raises RejectedInput naming the field, or Ignored for a group without alerts.
    """
    group_key = req(payload, "groupKey", str, what)
    truncated = truncated_count(payload, what)
    alerts = req(payload, "alerts", list, what)
    if not alerts:
        raise Ignored("notification without alerts")
    return [
        _event(alert, group_key, truncated, source, received_at, f"{what} alerts[{index}]")
        for index, alert in enumerate(alerts)
    ]


def _event(
    alert: Any, group_key: str, truncated: int, source: str, received_at: datetime, what: str
) -> Event:
    if not isinstance(alert, dict):
        raise RejectedInput(f"{what}: not an object")
    status = req(alert, "status", str, what)
    if status not in STATUSES:
        raise RejectedInput(f"{what}: status must be firing or resolved, not {status!r:.40}")
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
        truncated_alerts=truncated,
    )
    return Event(
        id=make_event_id(source, group_key, subject.fingerprint, subject.starts_at, status),
        kind=EventKind.DRIFT,
        source=source,
        subject=subject,
        received_at=received_at,
    )


def truncated_groups(events: list[Event]) -> dict[str, int]:
    """groupKey -> alerts the sender cut, for the groups of `events` that were cut."""
    return {
        event.subject.group_key: event.subject.truncated_alerts
        for event in events
        if isinstance(event.subject, DriftSubject) and event.subject.truncated_alerts > 0
    }
