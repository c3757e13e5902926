"""The registry, and what every source's Events have in common."""

from __future__ import annotations

import json

import pytest

from trigger_service.events import Event
from trigger_service.sources import SOURCES

from .helpers import RECEIVED
from .samples import SAMPLES, sample


def test_registry_names_every_route() -> None:
    assert set(SOURCES) == {
        "github",
        "gitlab",
        "gitea",
        "storage",
        "alertmanager",
        "grafana",
        "manual",
    }, "a sender added or removed: its name belongs in this set (docs/development.md)"
    assert all(source.name == name for name, source in SOURCES.items())
    missing, stray = sorted(set(SOURCES) - set(SAMPLES)), sorted(set(SAMPLES) - set(SOURCES))
    assert not missing and not stray, (
        f"tests/sources/samples.py: no sample for {missing}, a sample of no sender {stray}"
    )


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_events_round_trip_through_their_stored_form(name: str) -> None:
    delivery = sample(name)
    events = SOURCES[name].parse(delivery.headers, delivery.body, RECEIVED)
    assert events
    for event in events:
        assert event.source == name
        assert event.id.startswith(f"{name}-")
        assert event.received_at == RECEIVED
        stored = json.loads(json.dumps(event.to_dict()))
        assert Event.from_dict(stored) == event


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_parse_is_deterministic_for_a_delivery_with_an_id(name: str) -> None:
    delivery = sample(name)
    first = SOURCES[name].parse(delivery.headers, delivery.body, RECEIVED)
    assert SOURCES[name].parse(delivery.headers, delivery.body, RECEIVED) == first
