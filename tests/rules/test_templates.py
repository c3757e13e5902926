"""Param and image templates: what loads, what is refused, what renders."""

from __future__ import annotations

import re

import pytest

from tests.rules.builders import SHA, alert, manual, push, upload
from trigger_service.events import Event, EventKind
from trigger_service.rules.templates import (
    RenderError,
    TemplateError,
    check_image_template,
    parse_template,
    render,
    render_image,
    render_params,
)


@pytest.mark.parametrize(
    ("template", "event", "expected"),
    [
        ("{subject.uri}", upload("songs/a.csv"), "s3://datasets/songs/a.csv"),
        ("{subject.bucket}/{subject.key}", upload("songs/a.csv"), "datasets/songs/a.csv"),
        ("{event.kind} from {event.source} ({event.id})", upload(), "data from storage (data-1)"),
        ("drift {subject.labels[model]} {subject.status}", alert(), "drift songs firing"),
        ("{subject.annotations[epochs]}", alert(), "12"),
        ("at {subject.after} on {subject.branch}", push(), f"at {SHA} on main"),
        ("{subject.size}", upload(), ""),  # None renders empty
        ("{{literal}} {subject.pipeline}", manual(), "{literal} songs"),
        ("no placeholders", alert(), "no placeholders"),
        ("", alert(), ""),
    ],
)
def test_render(template: str, event: Event, expected: str) -> None:
    assert render(parse_template(template, event.kind), event) == expected


@pytest.mark.parametrize(
    ("template", "kind", "message"),
    [
        ("{subject.uri}", EventKind.CODE, "unknown placeholder {subject.uri} for a code event"),
        ("{subject.labels[model]}", EventKind.DATA, "unknown placeholder"),
        ("{subject.changed_paths}", EventKind.CODE, "unknown placeholder"),  # not a scalar
        ("{subject.labels}", EventKind.DRIFT, "unknown placeholder"),
        ("{event.subject}", EventKind.DRIFT, "unknown placeholder"),
        ("{event.received_at}", EventKind.DRIFT, "unknown placeholder"),
        ("{subject.__class__}", EventKind.DATA, "unknown placeholder"),
        ("{subject.key.__class__}", EventKind.DATA, "unknown placeholder"),
        ("{subject.labels[model].upper}", EventKind.DRIFT, "unknown placeholder"),
        ("{subject.key!r}", EventKind.DATA, "unknown placeholder"),
        ("{subject.size:d}", EventKind.DATA, "unknown placeholder"),
        ("{0}", EventKind.DATA, "unknown placeholder"),
        ("{}", EventKind.DATA, "unknown placeholder"),
        ("{subject.key", EventKind.DATA, "unmatched '{'"),
        ("a } b", EventKind.DATA, "unmatched '}'"),
    ],
)
def test_refused_at_load_time(template: str, kind: EventKind, message: str) -> None:
    with pytest.raises(TemplateError, match="^" + re.escape(message)):
        parse_template(template, kind)


def test_the_refusal_lists_what_is_allowed() -> None:
    with pytest.raises(TemplateError) as error:
        parse_template("{subject.url}", EventKind.DATA)
    assert "{subject.uri}" in str(error.value) and "{event.id}" in str(error.value)


def test_render_params_types_and_order() -> None:
    defaults = {"epochs": 5, "rate": 0.1, "shuffle": False, "name": "x", "uri": "s3://a/b"}
    templates = {
        "epochs": "{subject.annotations[epochs]}",
        "rate": "0.5",
        "shuffle": "TRUE",
        "name": "{subject.labels[model]}",
        "fixed": 3,  # non-strings pass as they are
    }
    params = render_params(templates, defaults, alert())
    assert params == {
        "epochs": 12,
        "rate": 0.5,
        "shuffle": True,
        "name": "songs",
        "uri": "s3://a/b",
        "fixed": 3,
    }


def test_render_params_names_the_param_that_failed() -> None:
    with pytest.raises(RenderError, match="param flag: cannot read 'maybe' as bool"):
        render_params({"flag": "maybe"}, {"flag": True}, alert())
    with pytest.raises(RenderError, match=r"param m: .*no label 'missing'"):
        render_params({"m": "{subject.labels[missing]}"}, {}, alert())


def test_image_templates() -> None:
    assert render_image("r.example/p:{commit}", SHA) == f"r.example/p:{SHA}"
    assert render_image("r.example/p:{short_commit}", SHA) == "r.example/p:1a2b3c4"
    assert render_image("r.example/p:latest", SHA) == "r.example/p:latest"
    check_image_template("r.example/p:{short_commit}")
    for bad in ("r/p:{sha}", "r/p:{commit", "r/p:{commit.__class__}"):
        with pytest.raises(TemplateError):
            check_image_template(bad)
