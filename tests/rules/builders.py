"""Events built straight from the dataclasses in trigger_service.events, and a rules file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trigger_service.events import (
    CodeSubject,
    DataSubject,
    DriftSubject,
    Event,
    EventKind,
    ManualSubject,
    Subject,
)
from trigger_service.rules import Rules, parse_rules

SHA = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
WHEN = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

RULES = """\
policy:
  max_runs_per_hour: 10
pipelines:
  - name: songs
    source:
      repository: file:///srv/git/songs.git
      module: pipeline
      image_template: "registry.example/pipeline:{commit}"
    defaults: {data_uri: "s3://datasets/songs/base.csv", epochs: 5, threshold: 0.8,
               shuffle: true, trigger_reason: ""}
    policy: {cooldown_seconds: 60, debounce_seconds: 10}
  - name: pinned
    version: v7
    source: {repository: "https://git.example/team/pinned.git", branch: prod,
             package_path: build/pipeline.yaml}
triggers:
  - name: code-main
    on: code
    pipeline: songs
    repository: team/songs
    branches: [main, "release/*"]
    paths: ["pipeline/**", "train.py"]
    params: {trigger_reason: "push {subject.after}"}
    policy: {debounce_seconds: 30, batch_by: branch}
  - name: code-pinned
    on: code
    pipeline: pinned
  - name: new-data
    on: data
    pipeline: songs
    bucket: datasets
    prefix: songs/
    suffix: .csv
    params: {data_uri: "{subject.uri}", trigger_reason: "new data {subject.key}"}
    policy: {batch_by: prefix}
  - name: drift
    on: drift
    pipeline: songs
    alertname: ModelDrift
    labels: {model: songs, severity: "=~warning|critical", env: "!=dev"}
    params:
      trigger_reason: "drift {subject.labels[model]} {subject.status}"
      epochs: "{subject.annotations[epochs]}"
    policy: {batch_by: alert, concurrency: skip}
  - name: drift-pinned
    on: drift
    pipeline: pinned
    alertname: PinnedDrift
    status: [firing, resolved]
  - name: manual
    on: manual
    pipelines: [songs]
"""


def rules(text: str = RULES) -> Rules:
    return parse_rules(text)


def event(kind: EventKind, subject: Subject, source: str = "test") -> Event:
    return Event(id=f"{kind.value}-1", kind=kind, source=source, subject=subject, received_at=WHEN)


def push(
    branch: str | None = "main",
    paths: tuple[str, ...] | None = ("pipeline/definition.py",),
    **overrides: Any,
) -> Event:
    values: dict[str, Any] = {
        "repository": "https://github.com/team/songs.git",
        "repository_name": "team/songs",
        "ref": f"refs/heads/{branch}",
        "branch": branch,
        "tag": None,
        "before": "0" * 39 + "1",
        "after": SHA,
        "changed_paths": paths,
    }
    values.update(overrides)
    return event(EventKind.CODE, CodeSubject(**values), source="github")


def upload(
    key: str = "songs/2026-11.csv",
    bucket: str = "datasets",
    name: str = "s3:ObjectCreated:Put",
) -> Event:
    return event(EventKind.DATA, DataSubject(bucket=bucket, key=key, event_name=name), "storage")


def alert(
    status: str = "firing",
    alertname: str = "ModelDrift",
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> Event:
    labels = {"model": "songs", "severity": "warning", "env": "prod", **labels}
    subject = DriftSubject(
        alertname=alertname,
        status=status,
        labels={k: v for k, v in labels.items() if v != "<absent>"},
        annotations=annotations or {"epochs": "12"},
        fingerprint="f00d",
    )
    return event(EventKind.DRIFT, subject, source="alertmanager")


def manual(pipeline: str = "songs", **fields: Any) -> Event:
    return event(EventKind.MANUAL, ManualSubject(pipeline=pipeline, **fields), source="manual")
