"""Grafana-managed alerting's webhook contact point (`"version": "1"`): one drift Event per alert.

Grafana's body is Alertmanager's group (`groupKey`, `truncatedAlerts`, `alerts[]` with status,
labels, annotations, startsAt, endsAt, fingerprint) plus Grafana's own fields (`orgId`, `state`,
`title`, `message`; per alert `values`, `valueString`, `dashboardURL`, `panelURL`,
`silenceURL`), which no rule reads. The alerts are parsed by `_alerts`, with the same Event
identity as Alertmanager's (groupKey + fingerprint + startsAt + status).

Authentication is what the contact point offers: HTTP Basic (any user name, the password is the
secret) or the `Authorization` header with a scheme of the user's choice (default Bearer) and
the secret as credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import Event
from trigger_service.sources._alerts import group_events
from trigger_service.sources._auth import check_authorization
from trigger_service.sources._json import load_object

WHAT = "grafana"

# The labels of the alert Grafana sends when someone presses "Test" on the contact point.
TEST_ALERT_LABELS = {"alertname": "TestAlert", "instance": "Grafana"}


def _is_test_notification(payload: Mapping[str, Any]) -> bool:
    alerts = payload.get("alerts")
    return (
        isinstance(alerts, list)
        and bool(alerts)
        and all(isinstance(a, dict) and a.get("labels") == TEST_ALERT_LABELS for a in alerts)
    )


class GrafanaSource:
    name = "grafana"
    route = "/webhooks/grafana"
    secret_setting = "grafana_token"
    max_body_setting = "max_body_bytes"
    media_types: tuple[str, ...] = ("application/json",)
    summary = "Receive a grafana delivery"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        check_authorization(headers, secret, WHAT, basic=True, any_scheme=True)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        payload = load_object(body, WHAT)
        version = payload.get("version")
        if version != "1":
            hint = (
                " (Alertmanager notifications go to /webhooks/alertmanager)"
                if version == "4"
                else ""
            )
            raise RejectedInput(f"{WHAT}: unsupported webhook version {version!r:.40}{hint}")
        if _is_test_notification(payload):
            raise Ignored("Grafana contact point test notification")
        return group_events(payload, source=self.name, what=WHAT, received_at=received_at)


source = GrafanaSource()
