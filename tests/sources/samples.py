"""One valid delivery per source (headers + body), for tests that need "any good request"."""

from __future__ import annotations

from dataclasses import dataclass

from .helpers import PAYLOADS


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


def _fixture(relative: str) -> bytes:
    return (PAYLOADS / relative).read_bytes()


ALERT_BODY = b"""{"version": "4", "groupKey": "{}:{alertname=\\"ModelDrift\\"}", "status": "firing",
 "receiver": "trigger", "groupLabels": {"alertname": "ModelDrift"}, "commonLabels": {},
 "commonAnnotations": {}, "externalURL": "http://am:9093", "truncatedAlerts": 0,
 "alerts": [{"status": "firing", "labels": {"alertname": "ModelDrift", "model": "churn"},
   "annotations": {"summary": "PSI above 0.2"}, "startsAt": "2026-11-25T07:00:00Z",
   "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom:9090/graph",
   "fingerprint": "2d5f7e0c3a1b4c6d"}]}"""

SAMPLES: dict[str, Delivery] = {
    "github": Delivery(
        {"x-github-event": "push", "x-github-delivery": "d-1", "content-type": "application/json"},
        _fixture("github/push-branch-created.json"),
    ),
    "gitlab": Delivery(
        {"x-gitlab-event": "Push Hook", "x-gitlab-event-uuid": "u-1"},
        _fixture("gitlab/push.json"),
    ),
    "gitea": Delivery(
        {"x-gitea-event": "push", "x-gitea-delivery": "g-1"}, _fixture("gitea/push-main.json")
    ),
    "storage": Delivery({}, _fixture("storage/s3-records.json")),
    "alertmanager": Delivery({}, ALERT_BODY),
    "grafana": Delivery({}, _fixture("grafana/docs-example.json")),
    "manual": Delivery(
        {"idempotency-key": "k-1"},
        b'{"pipeline": "churn", "version": "abc123", "params": {"epochs": 3}, "reason": "test"}',
    ),
}


def sample(name: str) -> Delivery:
    """SAMPLES[name]; a sender without one fails naming this file (docs/development.md)."""
    assert name in SAMPLES, f"{name}: tests/sources/samples.py has no valid delivery in SAMPLES"
    return SAMPLES[name]
