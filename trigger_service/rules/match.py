"""Filters: does one trigger accept one event? Each kind has the same verb, in a registry.

    CHECKS[kind](trigger, subject, pipeline) -> Verdict

A Verdict says why the trigger runs (ok) or which filter refused, and how many filters passed
before that one, so the NoRun reason can name the closest trigger first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from trigger_service.events import CodeSubject, DataSubject, DriftSubject, EventKind
from trigger_service.rules.branch_facts import BranchFacts, FactsFor
from trigger_service.rules.globs import match_any
from trigger_service.rules.model import CodeTrigger, DataTrigger, DriftTrigger, PipelineSpec

PASSED_ALL = 100  # every filter passed (the params then failed to render): the closest miss


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str  # ok: why it runs; else: the filter that refused
    passed: int = 0
    nothing_new: bool = False  # every filter passed, but git says the head is already built
    facts: BranchFacts | None = None  # what git said, for a push


def run(text: str) -> Verdict:
    return Verdict(True, text)


def refuse(passed: int, text: str) -> Verdict:
    return Verdict(False, text, passed)


def refuse_push(subject: CodeSubject) -> str | None:
    """Pushes no code trigger may run, whatever its filters say."""
    if subject.tag is not None:
        return f"tag push {subject.tag} (tags do not run pipelines)"
    if subject.deleted or subject.after.strip("0") == "":
        return f"branch deleted ({subject.branch or subject.ref})"
    if subject.branch is None:
        return f"push to {subject.ref} (not a branch)"
    return None


def check_code(
    trigger: CodeTrigger,
    subject: CodeSubject,
    pipeline: PipelineSpec,
    facts_for: FactsFor | None = None,
) -> Verdict:
    """With `facts_for`, git decides: the head, and the changed paths since the branch's
    current version; the payload's file lists are only a hint. Without it (rules alone, as in
    `check-rules` tests), the payload's lists are used."""
    if trigger.repository is not None and not _same_repository(trigger.repository, subject):
        return refuse(0, f"repository {subject.repository_name} is not {trigger.repository}")
    branch = subject.branch or ""
    branches = trigger.branches or (pipeline.source.branch,)
    if not match_any(branches, branch):
        return refuse(1, f"branch {branch} not in [{', '.join(branches)}]")
    if facts_for is None:
        verdict = _check_paths(trigger, branch, subject.after, subject.changed_paths, None)
        return verdict
    facts = facts_for(pipeline, branch)
    if facts.nothing_new:
        return Verdict(False, facts.nothing_new, PASSED_ALL, nothing_new=True, facts=facts)
    verdict = _check_paths(trigger, branch, facts.head, facts.changed_paths, facts.why_all_paths)
    return Verdict(verdict.ok, f"{verdict.text}; {facts.summary}", verdict.passed, facts=facts)


def _check_paths(
    trigger: CodeTrigger,
    branch: str,
    head: str,
    changed: tuple[str, ...] | None,
    all_changed: str | None,
) -> Verdict:
    at = f"at {head[:7]}"
    if changed is None:
        return run(f"push to {branch} {at}" + ("" if all_changed else " (changed files unknown)"))
    touched = list(changed)
    if trigger.paths is not None:
        touched = [path for path in touched if match_any(trigger.paths, path)]
        if not touched:
            count = _plural(len(changed), "changed file")
            return refuse(2, f"no path matched [{', '.join(trigger.paths)}] in {count}")
    if not touched:
        return run(f"push to {branch} {at}")
    more = f" (+{len(touched) - 1} more)" if len(touched) > 1 else ""
    return run(f"push to {branch} touching {touched[0]}{more} {at}")


def _same_repository(wanted: str, subject: CodeSubject) -> bool:
    # Forges differ in trailing ".git" and "/" and in the case of owner/name.
    def norm(value: str) -> str:
        return value.strip().rstrip("/").removesuffix(".git").lower()

    return norm(wanted) in (norm(subject.repository_name), norm(subject.repository))


def check_data(trigger: DataTrigger, subject: DataSubject, pipeline: PipelineSpec) -> Verdict:
    name, key = subject.event_name, subject.key
    if not match_any(trigger.events, name):
        if name.startswith("s3:ObjectRemoved:"):
            return refuse(0, "object removed")
        return refuse(0, f"event {name} not in {_list(trigger.events)}")
    if trigger.bucket is not None and subject.bucket != trigger.bucket:
        return refuse(1, f"bucket {subject.bucket} is not {trigger.bucket}")
    if not key.startswith(trigger.prefix):
        return refuse(2, f"key {key} does not start with {trigger.prefix}")
    if not key.endswith(trigger.suffix):
        return refuse(3, f"key {key} does not end with {trigger.suffix}")
    return run(f"new object {subject.uri}" if subject.created else f"{name} {subject.uri}")


@dataclass(frozen=True)
class LabelMatcher:
    """Alertmanager-style: "v" equals, "=~re" full-matches, "!=v" differs; missing label = ""."""

    op: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, actual: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(actual) is not None
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return self.value if self.op == "=" else f"{self.op}{self.value}"


@lru_cache(maxsize=512)
def parse_matcher(raw: str) -> LabelMatcher:
    """Raises re.error for a bad regular expression."""
    if raw.startswith("=~"):
        return LabelMatcher("=~", raw[2:], re.compile(raw[2:]))
    if raw.startswith("!="):
        return LabelMatcher("!=", raw[2:])
    return LabelMatcher("=", raw)


def check_drift(trigger: DriftTrigger, subject: DriftSubject, pipeline: PipelineSpec) -> Verdict:
    if subject.status not in trigger.status:
        if subject.status == "resolved":
            return refuse(0, "alert resolved")
        return refuse(0, f"status {subject.status} not in {_list(trigger.status)}")
    if trigger.alertname is not None and subject.alertname != trigger.alertname:
        return refuse(1, f"alertname {subject.alertname} is not {trigger.alertname}")
    for label, raw in trigger.labels.items():
        matcher = parse_matcher(raw)
        actual = subject.labels.get(label)
        if not matcher.matches(actual or ""):
            seen = "is missing" if actual is None else f"is {actual!r}"
            return refuse(2, f"label {label} {seen}, wanted {matcher}")
    shown = ", ".join(f"{k}={subject.labels[k]}" for k in trigger.labels if k in subject.labels)
    return run(f"alert {subject.alertname} {subject.status}" + (f" ({shown})" if shown else ""))


def _list(items: tuple[str, ...]) -> str:
    return f"[{', '.join(items)}]"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


Check = Callable[..., Verdict]
CHECKS: dict[EventKind, Check] = {
    EventKind.CODE: check_code,
    EventKind.DATA: check_data,
    EventKind.DRIFT: check_drift,
}
