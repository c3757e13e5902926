"""What the console's pages show, from the rules in force and the stages' own queries.

The decision page re-asks each trigger about each event (which one matched, and why the others
did not) and says where each parameter came from; the models page links every published version
back to its run, decision and events. The store is read only through the owning stage's query
functions (the timeline: `worker.queries.timeline`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from trigger_service.events import CodeSubject, Event, EventKind, ManualSubject
from trigger_service.rules import Rules, decide
from trigger_service.rules.match import CHECKS, refuse_push
from trigger_service.tracking import runs as tracked
from trigger_service.tracking.models import decision_of, read_models
from trigger_service.worker import queries as decided

TIMELINE_LIMIT = 100
LINEAGE_PARAMS = ("decision_id", "event_ids", "git_commit")
OUTCOMES = ("run", "no_run", "waiting", "dead")


def subject_line(kind: str, subject: dict[str, Any]) -> str:
    """One line naming what an event is about."""
    if kind == "code":
        return f"{subject.get('repository_name', '')} {subject.get('branch') or subject.get('ref', '')} @ {str(subject.get('after', ''))[:7]}"  # noqa: E501
    if kind == "data":
        where = f"{subject.get('bucket', '')}/{subject.get('key', '')}"
        return f"{where} ({subject.get('event_name', '')})"
    if kind == "drift":
        return f"{subject.get('alertname', '')} {subject.get('status', '')}"
    if kind == "manual":
        by = subject.get("requested_by")
        return f"{subject.get('pipeline', '')}" + (f" by {by}" if by else "")
    return str(subject)[:80]


def trigger_verdicts(event: Event, rules: Rules) -> list[dict[str, Any]]:
    """Each trigger of the event's kind, asked now: {"trigger", "pipeline", "ok", "text"}."""
    answers: list[dict[str, Any]] = []
    triggers = rules.triggers_for(event.kind)
    if event.kind is EventKind.MANUAL:
        verdict = decide(event, rules)
        matched = {m.trigger: m.reason for m in verdict} if isinstance(verdict, list) else {}
        for trigger in triggers:
            ok = trigger.name in matched
            text = matched.get(trigger.name) or (
                getattr(verdict, "reason", "") or "an earlier manual trigger took the request"
            )
            answers.append({"trigger": trigger.name, "pipeline": "", "ok": ok, "text": text})
        return answers
    refusal = refuse_push(event.subject) if isinstance(event.subject, CodeSubject) else None
    check = CHECKS.get(event.kind)
    for trigger in triggers:
        pipeline = rules.pipeline(str(getattr(trigger, "pipeline", "")))
        if refusal is not None or check is None or pipeline is None:
            text = refusal or f"pipeline {getattr(trigger, 'pipeline', '')} is not in the rules"
            answers.append({"trigger": trigger.name, "pipeline": "", "ok": False, "text": text})
            continue
        said = check(trigger, event.subject, pipeline)
        answers.append(
            {"trigger": trigger.name, "pipeline": pipeline.name, "ok": said.ok, "text": said.text}
        )
    return answers


def event_reason(event: Event, rules: Rules) -> str:
    """What the rules in force say about this one event on its own."""
    verdict = decide(event, rules)
    if isinstance(verdict, list):
        return "; ".join(f"{m.trigger} -> {m.pipeline.name}: {m.reason}" for m in verdict)
    return verdict.reason


def param_origins(
    decision: dict[str, Any],
    stored: list[Event],
    rules: Rules,
    submitted: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each parameter of a decision with where it came from: the request, a trigger's template,
    the pipeline's default, or the service (lineage: values from `submitted`, the run's params)."""
    params = dict(decision.get("params") or {})
    pipeline = rules.pipeline(decision.get("pipeline") or "")
    trigger = next((t for t in rules.triggers if t.name == decision.get("trigger")), None)
    requested: dict[str, Any] = {}
    for event in stored:
        if isinstance(event.subject, ManualSubject):
            requested.update(event.subject.params)
    rows = []
    for key, value in params.items():
        if key in requested:
            origin = "the request (manual trigger)"
        elif trigger is not None and key in trigger.params:
            origin = f"trigger {trigger.name}: {trigger.params[key]!s}"
        elif pipeline is not None and key in pipeline.defaults:
            origin = f"pipeline {pipeline.name} default"
        else:
            origin = "not in the rules in force"
        rows.append({"name": key, "value": value, "origin": origin})
    for key in LINEAGE_PARAMS:
        value = (submitted or {}).get(key, "(set at submission)")
        rows.append({"name": key, "value": value, "origin": "the service (lineage)"})
    return rows


def models_with_lineage(conn: Connection, models_root: Path | None) -> list[dict[str, Any]]:
    """Published versions, newest first per model, each with `serving` (the highest version: the
    model server serves the highest version folder) and its run -> decision -> events chain."""
    found = read_models(models_root) if models_root is not None else []
    highest: dict[str, int] = {}
    for model in found:
        highest[model["model_name"]] = max(highest.get(model["model_name"], 0), model["version"])
    for model in found:
        model["serving"] = model["version"] == highest[model["model_name"]]
        run = tracked.run_for_model(conn, model["model_name"], model["version"])
        decision_id = run.decision_id if run is not None else decision_of(model)
        if run is None and decision_id:
            run = tracked.run_by_decision(conn, decision_id)
        model["run"] = dict(run._mapping) if run is not None else None
        model["decision"] = decided.decision_row(conn, decision_id) if decision_id else None
        model["events"] = (
            [
                {"id": e.id, "kind": e.kind.value, "source": e.source,
                 "line": subject_line(e.kind.value, asdict(e.subject))}
                for e in decided.events_of_decision(conn, decision_id, 20)
            ]
            if decision_id
            else []
        )  # fmt: skip
    return found
