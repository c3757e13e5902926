"""Every parser, fed garbage: only RejectedInput or Ignored may come out, never a crash.

Per source, a mix of random bytes, random JSON documents, and valid deliveries with a few
fields deleted or replaced by random JSON. Events that do come out must survive the inbox's
JSON form.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trigger_service.errors import Ignored, RejectedInput
from trigger_service.events import Event
from trigger_service.sources import SOURCES

from .helpers import RECEIVED
from .samples import SAMPLES, sample

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Strings from a small nasty alphabet (escapes, separators, lone surrogates, which JSON can carry
# as "\\ud800" and which break encoding later) or from all of Unicode, surrogates included.
TEXT = st.text(st.sampled_from("a0/+%: \x00\u00e9\ud800\udfff"), max_size=6) | st.text(
    st.characters(exclude_categories=()), max_size=8
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        children: Any = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        children = ()
    for key, child in children:
        found.extend(_paths(child, (*prefix, key)))
    return found


DOCUMENTS = {name: json.loads(sample.body) for name, sample in SAMPLES.items()}
PATHS = {name: _paths(document) for name, document in DOCUMENTS.items()}


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    """A valid delivery with 1-3 fields deleted or replaced (paths gone by then are skipped)."""
    data = json.loads(json.dumps(DOCUMENTS[name]))
    for path in draw(st.lists(st.sampled_from(PATHS[name]), min_size=1, max_size=3)):
        parent = data
        for key in path[:-1]:
            parent = parent[key] if _has(parent, key) else None
        if not _has(parent, path[-1]):
            continue
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(TEXT | JSON)  # strings often: most fields are strings
    return json.dumps(data).encode()


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and key < len(container)


def bodies(name: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        st.builds(lambda value: json.dumps(value).encode(), JSON),
        mutated(name),
    )


def headers(name: str) -> st.SearchStrategy[dict[str, str]]:
    """The sample's headers, sometimes with one value replaced by random text."""
    base = sample(name).headers
    keys = sorted(base) or ["idempotency-key"]
    replaced = st.builds(lambda k, v: base | {k: v}, st.sampled_from(keys), st.text(max_size=20))
    return st.just(base) | replaced


def check(name: str, request_headers: dict[str, str], body: bytes) -> None:
    try:
        events = SOURCES[name].parse(request_headers, body, RECEIVED)
    except (RejectedInput, Ignored):
        return
    for event in events:
        assert event.source == name
        assert Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_parse_raises_only_domain_errors(name: str) -> None:
    # An inner @given with fixed strategies: much cheaper than drawing from st.data().
    @EXAMPLES
    @given(request_headers=headers(name), body=bodies(name))
    def fuzz(request_headers: dict[str, str], body: bytes) -> None:
        check(name, request_headers, body)

    fuzz()


@settings(EXAMPLES, max_examples=100)
@given(body=st.binary(max_size=100) | st.builds(lambda v: b"payload=" + v.encode(), st.text()))
def test_github_form_bodies(body: bytes) -> None:
    form = SAMPLES["github"].headers | {"content-type": "application/x-www-form-urlencoded"}
    check("github", form, body)
