"""Checks across the whole rules file, after the schema passed: each problem has its own path.

Names resolve and are unique; templates use only known placeholders for their trigger's kind;
label regexes compile; a trigger's batch_by fits its kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from trigger_service.rules.match import parse_matcher
from trigger_service.rules.model import DataTrigger, DriftTrigger, ManualTrigger, Rules
from trigger_service.rules.templates import TemplateError, parse_template

Path = tuple[str | int, ...]

_BATCH_BY_KIND = {"branch": "code", "prefix": "data", "alert": "drift"}


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


def cross_check(rules: Rules) -> list[Problem]:
    return [*_duplicates(rules), *_triggers(rules)]


def _duplicates(rules: Rules) -> Iterator[Problem]:
    for section, items in (("pipelines", rules.pipelines), ("triggers", rules.triggers)):
        first: dict[str, int] = {}
        for index, item in enumerate(items):
            if item.name in first:
                where = f"{section}[{first[item.name]}]"
                message = f"duplicate name {item.name!r} (as {where})"
                yield Problem((section, index, "name"), message)
            first.setdefault(item.name, index)


def _triggers(rules: Rules) -> Iterator[Problem]:
    known = [p.name for p in rules.pipelines]
    for index, trigger in enumerate(rules.triggers):
        at: Path = ("triggers", index)
        if isinstance(trigger, ManualTrigger):
            for j, name in enumerate(trigger.pipelines or ()):
                if name not in known:
                    yield Problem((*at, "pipelines", j), _unknown_pipeline(name, known))
        elif trigger.pipeline not in known:
            yield Problem((*at, "pipeline"), _unknown_pipeline(trigger.pipeline, known))
        for param, template in trigger.params.items():
            if isinstance(template, str):
                try:
                    parse_template(template, trigger.kind)
                except TemplateError as error:
                    yield Problem((*at, "params", param), str(error))
        if isinstance(trigger, DriftTrigger):
            for label, raw in trigger.labels.items():
                try:
                    parse_matcher(raw)
                except re.error as error:
                    yield Problem((*at, "labels", label), f"bad regular expression: {error}")
        if isinstance(trigger, DataTrigger) and _lists_any_bucket(trigger):
            message = "reconcile needs a bucket to list: set bucket, or reconcile_seconds: 0"
            yield Problem((*at, "reconcile_seconds"), message)
        wanted = _BATCH_BY_KIND.get(trigger.policy.batch_by or "none")
        if wanted is not None and wanted != trigger.on:
            message = f"batch_by {trigger.policy.batch_by} applies to {wanted} triggers only"
            yield Problem((*at, "policy", "batch_by"), message)


def _lists_any_bucket(trigger: DataTrigger) -> bool:
    # The default interval on a bucketless trigger just means "not listed"; asking for it is not.
    asked = "reconcile_seconds" in trigger.model_fields_set and trigger.reconcile_seconds > 0
    return asked and trigger.bucket is None


def _unknown_pipeline(name: str, known: list[str]) -> str:
    return f"unknown pipeline {name!r} (pipelines: {', '.join(known)})"
