"""Alertmanager webhook notifications (version 4): one drift Event per alert.

The group's parsing and the Event identity (groupKey + fingerprint + startsAt + status) are
shared with Grafana-managed alerting: see `_alerts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from trigger_service.errors import RejectedInput
from trigger_service.events import Event
from trigger_service.sources._alerts import STATUSES, group_events, label_fingerprint
from trigger_service.sources._auth import check_authorization
from trigger_service.sources._json import load_object

WHAT = "alertmanager"

__all__ = ["STATUSES", "AlertmanagerSource", "label_fingerprint", "source"]


class AlertmanagerSource:
    name = "alertmanager"
    route = "/webhooks/alertmanager"
    secret_setting = "alertmanager_token"
    max_body_setting = "max_body_bytes"
    media_types: tuple[str, ...] = ("application/json",)
    summary = "Receive a alertmanager delivery"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        # http_config.authorization sends Bearer; basic_auth sends any user with the secret.
        check_authorization(headers, secret, WHAT, basic=True)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: datetime) -> list[Event]:
        payload = load_object(body, WHAT)
        version = payload.get("version")
        if version != "4":
            # Grafana-managed alerting posts version 1: it has its own route.
            hint = " (Grafana-managed alerts go to /webhooks/grafana)" if version == "1" else ""
            raise RejectedInput(f"{WHAT}: unsupported webhook version {version!r:.40}{hint}")
        return group_events(payload, source=self.name, what=WHAT, received_at=received_at)


source = AlertmanagerSource()
