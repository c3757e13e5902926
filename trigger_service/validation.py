"""Checking values from outside once, at the edge, with the reason.

Every function raises RejectedInput (HTTP 400) whose message starts with the field it names, so
nothing it refuses is stored, decided or run:

    segment(value, field)                  one safe path segment (pipeline and model names)
    text(value, field)                     a string that is valid Unicode (no lone surrogates, NUL)
    parameters(values, defaults, allowed, field)
                                           pipeline parameters converted to the default's type:
                                           ints stay ints ("10" -> 10 for an int default, "abc"
                                           refused), floats finite, 64-bit integer range
    manual_request(subject, rules)         a manual trigger against the rules in force: a known
                                           pipeline that a manual trigger allows, known
                                           parameters of the right type; returns the subject with
                                           converted parameters
    checked_events(events, rules)          the above for every manual event of a delivery
    reads_rules(events)                    whether a delivery needs the rules at all (a manual one)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from trigger_service.errors import RejectedInput
from trigger_service.events import Event, ManualSubject
from trigger_service.rules.model import ManualTrigger, Rules

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Letters, digits, '.', '_', '-'; starting alphanumeric, so never "", "." or "..".
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Parameters that name a folder: checked wherever they come from.
PATH_SEGMENT_PARAMS = frozenset({"model_name"})
# ASCII only: int() and float() also take "١٢" (Arabic-Indic digits) and "1_000".
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|nan)", re.I)
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def segment(value: Any, field: str) -> str:
    """`value` if it is one safe path segment (1-128 of A-Z a-z 0-9 . _ -, starting
    alphanumeric); RejectedInput naming `field` otherwise."""
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        shown = repr(value)[:60] if isinstance(value, str) else type(value).__name__
        raise RejectedInput(
            f"{field}: {shown} is not one path segment (1-128 letters, digits, '.', '_', '-', "
            "starting with a letter or digit)"
        )
    return value


def text(value: str, field: str) -> str:
    """`value` if it can be stored and logged as UTF-8 text; RejectedInput otherwise."""
    if "\x00" in value:
        raise RejectedInput(f"{field}: contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RejectedInput(f"{field}: is not valid Unicode (a lone surrogate)") from None
    return value


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise RejectedInput(f"{field}: must be an integer, not a boolean")
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value.strip()):
            raise RejectedInput(f"{field}: {value[:40]!r} is not an integer")
        value = int(value.strip(), 10)
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise RejectedInput(f"{field}: {value!r} is not an integer")
        value = int(value)
    if not isinstance(value, int):
        raise RejectedInput(f"{field}: must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise RejectedInput(f"{field}: {value} is outside the 64-bit integer range")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise RejectedInput(f"{field}: must be a number, not a boolean")
    if isinstance(value, str):
        if not _NUMBER_TEXT.fullmatch(value.strip()):
            raise RejectedInput(f"{field}: {value[:40]!r} is not a number")
        value = float(value.strip())
    if not isinstance(value, int | float):
        raise RejectedInput(f"{field}: must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise RejectedInput(f"{field}: {value} is too large") from None
    if not math.isfinite(number):
        raise RejectedInput(f"{field}: must be a finite number (not {value!r})")
    return number


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RejectedInput(f"{field}: must be true or false")


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RejectedInput(f"{field}: must be a string")
    return text(value, field)


def scalar(value: Any, like: Any, field: str) -> Any:
    """`value` converted to the type of `like` (a pipeline default); without a default, any
    finite scalar (an int within 64 bits)."""
    if like is None:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return _integer(value, field)
        if isinstance(value, float):
            return _number(value, field)
        return _string(value, field)
    if isinstance(like, bool):
        return _boolean(value, field)
    if isinstance(like, int):
        return _integer(value, field)
    if isinstance(like, float):
        return _number(value, field)
    return _string(value, field)


def parameters(
    values: Mapping[str, Any], defaults: Mapping[str, Any], allowed: Iterable[str], field: str
) -> dict[str, Any]:
    """Each parameter known (a default or in `allowed`) and converted; see `scalar`."""
    known = set(defaults) | set(allowed)
    unknown = sorted(set(values) - known)
    if unknown:
        shown = ", ".join(repr(k)[:40] for k in unknown[:5])
        raise RejectedInput(
            f"{field}: unknown parameter{'s' if len(unknown) > 1 else ''} {shown}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
    converted = {}
    for name, value in values.items():
        where = f"{field}.{name}"
        converted[name] = scalar(value, defaults.get(name), where)
        if name in PATH_SEGMENT_PARAMS:
            segment(converted[name], where)
    return converted


def manual_request(subject: ManualSubject, rules: Rules) -> ManualSubject:
    """The manual trigger checked against `rules`; RejectedInput naming the field if refused."""
    segment(subject.pipeline, "pipeline")
    pipeline = rules.pipeline(subject.pipeline)
    if pipeline is None:
        names = ", ".join(p.name for p in rules.pipelines)
        raise RejectedInput(f"pipeline: unknown pipeline {subject.pipeline!r}; one of {names}")
    triggers = [
        t
        for t in rules.triggers
        if isinstance(t, ManualTrigger) and (t.pipelines is None or pipeline.name in t.pipelines)
    ]
    if not triggers:
        raise RejectedInput(f"pipeline: no manual trigger in the rules allows {pipeline.name}")
    params = parameters(subject.params, pipeline.defaults, triggers[0].params, "params")
    text(subject.reason, "reason")
    return replace(subject, params=params)


def reads_rules(events: list[Event]) -> bool:
    """Whether checked_events(events, ...) needs the rules (a manual request among them)."""
    return any(isinstance(event.subject, ManualSubject) for event in events)


def checked_events(events: list[Event], rules: Callable[[], Rules]) -> list[Event]:
    """`events` with every manual request checked against the rules in force (read only when
    there is one); RejectedInput for the first refused."""
    checked = []
    for event in events:
        if isinstance(event.subject, ManualSubject):
            event = replace(event, subject=manual_request(event.subject, rules()))
        checked.append(event)
    return checked
