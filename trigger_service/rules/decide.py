"""decide(event, rules): which pipelines run, at which version, with which parameters, and why.

Pure: no clock, no I/O. Triggers are read in file order; an event runs each pipeline at most
once (the first trigger that accepts it for that pipeline wins). When nothing runs, NoRun says
why, naming for each trigger of the event's kind the filter that refused, closest first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trigger_service.events import (
    CodeSubject,
    DataSubject,
    DriftSubject,
    Event,
    EventKind,
    ManualSubject,
)
from trigger_service.rules.branch_facts import FactsFor
from trigger_service.rules.match import CHECKS, PASSED_ALL, refuse_push
from trigger_service.rules.model import ManualTrigger, PipelineSpec, Rules, Trigger
from trigger_service.rules.policy import Policy, merge_policy
from trigger_service.rules.templates import RenderError, render_params

MAX_EXPLAINED = 3  # triggers named in a NoRun reason


@dataclass(frozen=True)
class VersionRequest:
    """head: a push; the branch head, asked of git again when the run fires (`commit` is the
    head git gave when the push was decided, shown in explanations; "commit" is the same kind
    as stored by older versions). current: the branch's current version (data, drift).
    pinned/named: a version by name (the rules file's pin, a manual trigger's `version`)."""

    kind: Literal["head", "commit", "current", "pinned", "named"]
    commit: str | None = None
    branch: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class NoRun:
    reason: str


@dataclass(frozen=True)
class Match:
    trigger: str
    pipeline: PipelineSpec
    params: dict[str, Any]
    version_request: VersionRequest
    policy: Policy
    batch_key: str  # coalescing scope: "<pipeline>/<trigger>[/<batch_by part>]"
    reason: str
    event_id: str


def decide(event: Event, rules: Rules, facts_for: FactsFor | None = None) -> list[Match] | NoRun:
    """`facts_for` answers what git says about a (pipeline, branch) for pushes (see
    rules.branch_facts); it is only called once a trigger's repository and branch filters
    accept the push, and its errors propagate to the caller."""
    triggers = rules.triggers_for(event.kind)
    if not triggers:
        return NoRun(f"no trigger for kind {event.kind.value}")
    if event.kind is EventKind.MANUAL:
        return _decide_manual(event, rules, triggers)
    if isinstance(event.subject, CodeSubject) and (refusal := refuse_push(event.subject)):
        return NoRun(refusal)
    return _decide_filtered(event, rules, triggers, facts_for)


def _decide_filtered(
    event: Event, rules: Rules, triggers: Sequence[Trigger], facts_for: FactsFor | None
) -> list[Match] | NoRun:
    check = CHECKS[event.kind]
    matches: list[Match] = []
    misses: list[tuple[int, str, str, bool]] = []  # (filters passed, trigger, why not, final)
    for trigger in triggers:
        assert not isinstance(trigger, ManualTrigger)
        pipeline = _pipeline(rules, trigger.pipeline)
        if any(m.pipeline.name == pipeline.name for m in matches):
            continue
        if event.kind is EventKind.CODE:
            verdict = check(trigger, event.subject, pipeline, facts_for)
        else:
            verdict = check(trigger, event.subject, pipeline)
        if not verdict.ok:
            misses.append((verdict.passed, trigger.name, verdict.text, verdict.nothing_new))
            continue
        try:
            params = render_params(trigger.params, pipeline.defaults, event)
        except RenderError as error:
            misses.append((PASSED_ALL, trigger.name, str(error), False))
            continue
        head = verdict.facts.head if verdict.facts is not None else None
        version = _push_version(event.subject, head) or _default_version(pipeline)
        matches.append(_match(event, rules, trigger, pipeline, params, version, verdict.text))
    return matches or NoRun(_explain(misses))


def _decide_manual(event: Event, rules: Rules, triggers: Sequence[Trigger]) -> list[Match] | NoRun:
    subject = event.subject
    assert isinstance(subject, ManualSubject)
    pipeline = rules.pipeline(subject.pipeline)
    if pipeline is None:
        return NoRun(f"manual trigger: unknown pipeline {subject.pipeline}")
    trigger = next(
        (t for t in triggers if isinstance(t, ManualTrigger) and _allows(t, pipeline.name)), None
    )
    if trigger is None:
        return NoRun(f"manual trigger: pipeline {pipeline.name} is not allowed")
    # A request may set only parameters the rules declare: a typo must not be dropped silently.
    unknown = sorted(set(subject.params) - set(pipeline.defaults) - set(trigger.params))
    if unknown:
        return NoRun(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    try:
        params = render_params(trigger.params, pipeline.defaults, event) | subject.params
    except RenderError as error:
        return NoRun(f"manual trigger: {error}")
    if subject.version:
        version = VersionRequest("named", name=subject.version)
    else:
        version = _default_version(pipeline)
    by = f" by {subject.requested_by}" if subject.requested_by else ""
    reason = f"manual run{by}" + (f": {subject.reason}" if subject.reason else "")
    return [_match(event, rules, trigger, pipeline, params, version, reason)]


def _allows(trigger: ManualTrigger, pipeline: str) -> bool:
    return trigger.pipelines is None or pipeline in trigger.pipelines


def _match(
    event: Event,
    rules: Rules,
    trigger: Trigger,
    pipeline: PipelineSpec,
    params: dict[str, Any],
    version: VersionRequest,
    reason: str,
) -> Match:
    policy = merge_policy(rules.policy, pipeline.policy, trigger.policy)
    return Match(
        trigger=trigger.name,
        pipeline=pipeline,
        params=params,
        version_request=version,
        policy=policy,
        batch_key=batch_key(pipeline.name, trigger.name, policy, event),
        reason=reason,
        event_id=event.id,
    )


def _pipeline(rules: Rules, name: str) -> PipelineSpec:
    pipeline = rules.pipeline(name)
    if pipeline is None:  # load_rules refuses such files; Rules built by hand may not
        raise ValueError(f"trigger names unknown pipeline {name!r}")
    return pipeline


def _push_version(subject: object, head: str | None) -> VersionRequest | None:
    if isinstance(subject, CodeSubject):
        return VersionRequest("head", commit=head or subject.after, branch=subject.branch)
    return None


def _default_version(pipeline: PipelineSpec) -> VersionRequest:
    if pipeline.version is not None:
        return VersionRequest("pinned", name=pipeline.version)
    return VersionRequest("current", branch=pipeline.source.branch)


_BATCH_PARTS: dict[str, Callable[[Any], str | None]] = {
    "branch": lambda s: f"branch={s.branch}" if isinstance(s, CodeSubject) else None,
    "prefix": lambda s: (
        "prefix=" + s.key[: s.key.rfind("/") + 1] if isinstance(s, DataSubject) else None
    ),
    "alert": lambda s: (
        f"alert={s.alertname}:{s.fingerprint}" if isinstance(s, DriftSubject) else None
    ),
}


def batch_key(pipeline: str, trigger: str, policy: Policy, event: Event) -> str:
    """Events with the same key coalesce; `batch_by` splits a trigger's events further."""
    part_of = _BATCH_PARTS.get(policy.batch_by)
    part = part_of(event.subject) if part_of is not None else None
    return f"{pipeline}/{trigger}" + (f"/{part}" if part else "")


def _explain(misses: list[tuple[int, str, str, bool]]) -> str:
    reasons = {why for _, _, why, _ in misses}
    if len(reasons) == 1:
        final = all(nothing_new for *_, nothing_new in misses)
        return f"{'no run' if final else 'no trigger matched'}: {reasons.pop()}"
    closest = sorted(misses, key=lambda miss: -miss[0])
    shown = [f"{name}: {why}" for _, name, why, _ in closest[:MAX_EXPLAINED]]
    if len(closest) > MAX_EXPLAINED:
        shown.append(f"+{len(closest) - MAX_EXPLAINED} more")
    return "no trigger matched: " + "; ".join(shown)
