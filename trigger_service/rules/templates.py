"""Parameter and image templates: `str.format`-like text, but safe.

A trigger's `params` map a parameter name to a template rendered from the Event:

    data_uri: "{subject.uri}"
    trigger_reason: "drift {subject.labels[model]} {subject.status}"

The only placeholders are `{event.id}`, `{event.kind}`, `{event.source}`, `{subject.<field>}`
(a scalar field of the event kind's subject, plus `{subject.uri}` for data),
`{subject.labels[<name>]}` and `{subject.annotations[<name>]}` (drift). `{{` and `}}` are literal
braces. Anything else is refused when the rules load. Rendering reads exactly the named field:
no `str.format` on live objects, so a rules file cannot walk attributes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from trigger_service.events import SUBJECT_TYPES, Event, EventKind

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"(event|subject)\.([A-Za-z_]\w*)(?:\[([A-Za-z_]\w*)\])?")
_IMAGE_PLACEHOLDERS = ("commit", "short_commit")
SHORT_COMMIT = 7

EVENT_FIELDS = ("id", "kind", "source")
_NOT_SCALAR = {"changed_paths", "labels", "annotations", "params"}
_INDEXABLE = {EventKind.DRIFT: ("labels", "annotations")}
_PROPERTIES = {EventKind.DATA: ("uri",)}


class TemplateError(ValueError):
    """A template the rules file may not use; raised at load time."""


class RenderError(ValueError):
    """The event lacks what a (valid) template names, e.g. an alert without that label."""


@dataclass(frozen=True)
class Placeholder:
    root: str  # "event" | "subject"
    name: str
    key: str | None = None

    def __str__(self) -> str:
        index = f"[{self.key}]" if self.key is not None else ""
        return f"{{{self.root}.{self.name}{index}}}"


Part = str | Placeholder


def subject_fields(kind: EventKind) -> tuple[str, ...]:
    scalar = [f.name for f in fields(SUBJECT_TYPES[kind]) if f.name not in _NOT_SCALAR]
    return (*scalar, *_PROPERTIES.get(kind, ()))


def allowed_placeholders(kind: EventKind) -> list[str]:
    names = [f"{{event.{name}}}" for name in EVENT_FIELDS]
    names += [f"{{subject.{name}}}" for name in subject_fields(kind)]
    names += [f"{{subject.{name}[<name>]}}" for name in _INDEXABLE.get(kind, ())]
    return names


@lru_cache(maxsize=512)
def parse_template(text: str, kind: EventKind) -> tuple[Part, ...]:
    """Split `text` into literal strings and placeholders valid for events of `kind`."""
    parts: list[Part] = []
    pos = 0
    for token in _TOKEN.finditer(text):
        if token.start() > pos:
            parts.append(text[pos : token.start()])
        pos = token.end()
        raw = token.group(0)
        if raw in ("{{", "}}"):
            parts.append(raw[0])
        elif token.group(1) is None:
            raise TemplateError(f"unmatched {raw!r} (write {raw * 2} for a literal brace)")
        else:
            parts.append(_placeholder(token.group(1), kind))
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def _placeholder(expr: str, kind: EventKind) -> Placeholder:
    found = _PLACEHOLDER.fullmatch(expr)
    if found is not None:
        root, name, key = found.groups()
        if root == "event" and key is None and name in EVENT_FIELDS:
            return Placeholder(root, name)
        if root == "subject" and key is None and name in subject_fields(kind):
            return Placeholder(root, name)
        if root == "subject" and key is not None and name in _INDEXABLE.get(kind, ()):
            return Placeholder(root, name, key)
    allowed = ", ".join(allowed_placeholders(kind))
    raise TemplateError(f"unknown placeholder {{{expr}}} for a {kind.value} event; use {allowed}")


def render(parts: tuple[Part, ...], event: Event) -> str:
    return "".join(part if isinstance(part, str) else _value(part, event) for part in parts)


def _value(part: Placeholder, event: Event) -> str:
    if part.root == "event":
        value: Any = event.kind.value if part.name == "kind" else getattr(event, part.name)
    elif part.key is None:
        value = getattr(event.subject, part.name)
    else:
        mapping: Mapping[str, str] = getattr(event.subject, part.name)
        if part.key not in mapping:
            raise RenderError(f"{part}: the alert has no {part.name[:-1]} {part.key!r}")
        value = mapping[part.key]
    return "" if value is None else str(value)


def render_params(
    templates: Mapping[str, Any], defaults: Mapping[str, Any], event: Event
) -> dict[str, Any]:
    """Defaults, then the trigger's params: strings rendered, non-strings taken as they are.

    A rendered string is read as the type of the pipeline's default for that name (int, float,
    bool), so `epochs: "{subject.labels[epochs]}"` still reaches KFP as an integer.
    """
    params = dict(defaults)
    for name, template in templates.items():
        if not isinstance(template, str):
            params[name] = template
            continue
        try:
            text = render(parse_template(template, event.kind), event)
            params[name] = _like(text, defaults.get(name))
        except RenderError as error:
            raise RenderError(f"param {name}: {error}") from None
    return params


def _like(text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return {"true": True, "false": False}[text.strip().lower()]
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except (KeyError, ValueError):
        raise RenderError(f"cannot read {text!r} as {type(default).__name__}") from None
    return text


def check_image_template(template: str) -> None:
    for token in _TOKEN.finditer(template):
        name = token.group(1)
        if token.group(0) in ("{{", "}}"):
            continue
        if name not in _IMAGE_PLACEHOLDERS:
            shown = token.group(0) if name is None else f"{{{name}}}"
            raise TemplateError(f"unknown placeholder {shown}; use {{commit}} or {{short_commit}}")


def render_image(template: str, commit: str) -> str:
    values = {"commit": commit, "short_commit": commit[:SHORT_COMMIT]}

    def substitute(token: re.Match[str]) -> str:
        raw = token.group(0)
        return raw[0] if raw in ("{{", "}}") else values[token.group(1)]

    return _TOKEN.sub(substitute, template)
