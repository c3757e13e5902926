"""Explaining a decision without making it: what would this payload (or stored event) do now?

Shared by POST /explain and `trigger-service explain`. Nothing is stored, submitted or changed;
the signature is not checked (the caller is an operator, authenticated separately).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine

from trigger_service.errors import PermanentError, RejectedInput, TemporaryError
from trigger_service.events import CodeSubject, Event, utcnow
from trigger_service.pauses import paused, without_paused
from trigger_service.rules import BranchFacts, FactsFor, NoRun, PipelineSpec, Rules, decide
from trigger_service.sources import SOURCES, truncated_groups
from trigger_service.worker.admission import verdict_for


def parse_payload(source: str, headers: Mapping[str, str], body: bytes) -> list[Event]:
    if source not in SOURCES:
        raise RejectedInput(f"unknown source {source!r}; one of {', '.join(sorted(SOURCES))}")
    lowered = {k.lower(): v for k, v in headers.items()}
    return SOURCES[source].parse(lowered, body, utcnow())


def _recording(facts_for: FactsFor, asked: dict[str, BranchFacts]) -> FactsFor:
    """`facts_for`, noting each answer by pipeline name for the explanation."""

    def recording(pipeline: PipelineSpec, branch: str) -> BranchFacts:
        asked[pipeline.name] = facts_for(pipeline, branch)
        return asked[pipeline.name]

    return recording


def explain(
    events: list[Event],
    rules: Rules,
    engine: Engine,
    now: float,
    facts_for: FactsFor | None = None,
) -> list[dict[str, Any]]:
    """One answer per event. For a push, `facts_for` (versions.heads) asks git, and the answer
    shows what git said: the head, the diff base, the changed paths used, and why; the payload's
    own file list is shown beside it as `payload_hint`. A git failure is part of the answer."""
    answers = []
    with engine.connect() as conn:
        held = paused(conn)
    for event in events:
        asked: dict[str, BranchFacts] = {}
        recording = _recording(facts_for, asked) if facts_for is not None else None
        answer: dict[str, Any] = {"event": event.to_dict()}
        cut = truncated_groups([event])
        if cut:
            answer["warnings"] = [
                f"the sender cut {count} alert(s) of group {group} (max_alerts): "
                "they are not in this delivery and nothing decides them"
                for group, count in cut.items()
            ]
        if isinstance(event.subject, CodeSubject):
            hint = event.subject.changed_paths
            answer["payload_hint"] = {
                "after": event.subject.after,
                "changed_paths": None if hint is None else list(hint[:200]),
            }
        try:
            verdict = decide(event, rules, recording)
        except (TemporaryError, PermanentError) as exc:
            answer.update(run=None, reason=f"git could not answer: {exc}")
            answers.append(answer)
            continue
        if asked:
            answer["git"] = {name: facts.to_dict() for name, facts in asked.items()}
        held_back = without_paused(verdict, held)
        if isinstance(verdict, NoRun):
            answer.update(run=False, reason=verdict.reason)
        else:
            matches = []
            for match in verdict:
                with engine.connect() as conn:
                    policy_now, queued = verdict_for(conn, match.pipeline.name, match.policy, now)
                matches.append(
                    {
                        "trigger": match.trigger,
                        "pipeline": match.pipeline.name,
                        "reason": match.reason,
                        "version_request": asdict(match.version_request),
                        "params": match.params,
                        "policy": asdict(match.policy),
                        "batch_key": match.batch_key,
                        "paused": match.trigger in held,
                        "git": asked[match.pipeline.name].to_dict()
                        if match.pipeline.name in asked
                        else None,
                        "policy_now": {
                            "verdict": type(policy_now).__name__.lower(),
                            "reason": getattr(policy_now, "reason", "would run now"),
                            "queued_decision": queued,
                        },
                    }
                )
            answer.update(run=True, matches=matches)
            if isinstance(held_back, NoRun):  # every trigger that matched is paused
                answer.update(run=False, reason=held_back.reason)
        answers.append(answer)
    return answers
