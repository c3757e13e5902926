"""Explaining a decision without making it: what would this payload (or stored event) do now?

Shared by POST /explain and `trigger-service explain`. Nothing is stored, submitted or changed;
the signature is not checked (the caller is an operator, authenticated separately).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine

from trigger_service.errors import RejectedInput
from trigger_service.events import Event, utcnow
from trigger_service.pauses import paused, without_paused
from trigger_service.rules import NoRun, Rules, decide
from trigger_service.sources import SOURCES, truncated_groups
from trigger_service.worker.admission import verdict_for


def parse_payload(source: str, headers: Mapping[str, str], body: bytes) -> list[Event]:
    if source not in SOURCES:
        raise RejectedInput(f"unknown source {source!r}; one of {', '.join(sorted(SOURCES))}")
    lowered = {k.lower(): v for k, v in headers.items()}
    return SOURCES[source].parse(lowered, body, utcnow())


def explain(events: list[Event], rules: Rules, engine: Engine, now: float) -> list[dict[str, Any]]:
    answers = []
    with engine.connect() as conn:
        held = paused(conn)
    for event in events:
        verdict = decide(event, rules)
        answer: dict[str, Any] = {"event": event.to_dict()}
        cut = truncated_groups([event])
        if cut:
            answer["warnings"] = [
                f"the sender cut {count} alert(s) of group {group} (max_alerts): "
                "they are not in this delivery and nothing decides them"
                for group, count in cut.items()
            ]
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
