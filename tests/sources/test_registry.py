"""The registry, and what every source's Events have in common."""

from __future__ import annotations

import json

import pytest

from trigger_service.events import Event
from trigger_service.sources import SOURCES

from .helpers import RECEIVED
from .samples import SAMPLES


def test_registry_names_every_route() -> None:
    assert set(SOURCES) == {
        "github",
        "gitlab",
        "gitea",
        "storage",
        "alertmanager",
        "grafana",
        "manual",
    }
    assert all(source.name == name for name, source in SOURCES.items())
    assert set(SAMPLES) == set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_events_round_trip_through_their_stored_form(name: str) -> None:
    sample = SAMPLES[name]
    events = SOURCES[name].parse(sample.headers, sample.body, RECEIVED)
    assert events
    for event in events:
        assert event.source == name
        assert event.id.startswith(f"{name}-")
        assert event.received_at == RECEIVED
        stored = json.loads(json.dumps(event.to_dict()))
        assert Event.from_dict(stored) == event


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_parse_is_deterministic_for_a_delivery_with_an_id(name: str) -> None:
    sample = SAMPLES[name]
    first = SOURCES[name].parse(sample.headers, sample.body, RECEIVED)
    assert SOURCES[name].parse(sample.headers, sample.body, RECEIVED) == first
