"""What the console's pages show, read from the store and the rules in force.

The timeline joins events to their decisions; the decision page re-asks each trigger about each
event (which one matched, and why the others did not) and says where each parameter came from;
the models page links every published version back to its run, decision and events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, String, cast, or_, select

from trigger_service.database import decision_events, decisions, events, runs
from trigger_service.events import CodeSubject, Event, EventKind, ManualSubject
from trigger_service.inbox.store import row_to_event
from trigger_service.rules import Rules, decide
from trigger_service.rules.match import CHECKS, refuse_push
from trigger_service.tracking.models import decision_of, read_models

TIMELINE_LIMIT = 100
LINEAGE_PARAMS = ("decision_id", "event_ids", "git_commit")
OUTCOMES = ("run", "no_run", "waiting", "dead")


@dataclass(frozen=True)
class TimelineFilter:
    source: str | None = None
    kind: str | None = None
    outcome: str | None = None  # run | no_run | waiting (not decided yet) | dead
    pipeline: str | None = None
    text: str | None = None  # in the event id, its subject or the decision's reason


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def timeline(
    conn: Connection, wanted: TimelineFilter, limit: int = TIMELINE_LIMIT, offset: int = 0
) -> list[Any]:
    """Events newest first from row `offset`, each row with its decision (if any): id,
    received_at, source, kind, subject, status, last_error, decision_id, outcome, state, reason,
    pipeline, trigger, run_id."""
    stmt = (
        select(
            events.c.id,
            events.c.received_at,
            events.c.source,
            events.c.kind,
            events.c.subject,
            events.c.status,
            events.c.last_error,
            decisions.c.id.label("decision_id"),
            decisions.c.outcome,
            decisions.c.state,
            decisions.c.reason,
            decisions.c.pipeline,
            decisions.c.trigger,
            decisions.c.run_id,
        )
        .select_from(events)
        .outerjoin(decision_events, decision_events.c.event_id == events.c.id)
        .outerjoin(decisions, decisions.c.id == decision_events.c.decision_id)
        .order_by(events.c.received_at.desc(), events.c.id)
        .limit(limit)
        .offset(offset)
    )
    if wanted.source:
        stmt = stmt.where(events.c.source == wanted.source)
    if wanted.kind:
        stmt = stmt.where(events.c.kind == wanted.kind)
    if wanted.pipeline:
        stmt = stmt.where(decisions.c.pipeline == wanted.pipeline)
    if wanted.outcome in ("run", "no_run"):
        stmt = stmt.where(decisions.c.outcome == wanted.outcome)
    elif wanted.outcome == "waiting":
        stmt = stmt.where(events.c.status.in_(["pending", "claimed"]))
    elif wanted.outcome == "dead":
        stmt = stmt.where(events.c.status == "dead")
    if wanted.text:
        pattern = _like(wanted.text)
        stmt = stmt.where(
            or_(
                events.c.id.ilike(pattern, escape="\\"),
                cast(events.c.subject, String).ilike(pattern, escape="\\"),
                decisions.c.reason.ilike(pattern, escape="\\"),
            )
        )
    return list(conn.execute(stmt).all())


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


def decision_events_full(conn: Connection, decision_id: str, limit: int = 200) -> list[Event]:
    rows = conn.execute(
        select(events)
        .join(decision_events, decision_events.c.event_id == events.c.id)
        .where(decision_events.c.decision_id == decision_id)
        .order_by(decision_events.c.at, events.c.id)
        .limit(limit)
    ).all()
    return [row_to_event(row) for row in rows]


def models_with_lineage(conn: Connection, models_root: Path | None) -> list[dict[str, Any]]:
    """Published versions, newest first per model, each with `serving` (the highest version: the
    model server serves the highest version folder) and its run -> decision -> events chain."""
    found = read_models(models_root) if models_root is not None else []
    highest: dict[str, int] = {}
    for model in found:
        highest[model["model_name"]] = max(highest.get(model["model_name"], 0), model["version"])
    for model in found:
        model["serving"] = model["version"] == highest[model["model_name"]]
        run = conn.execute(
            select(runs).where(
                runs.c.model_name == model["model_name"], runs.c.model_version == model["version"]
            )
        ).first()
        decision_id = run.decision_id if run is not None else decision_of(model)
        if run is None and decision_id:
            run = conn.execute(select(runs).where(runs.c.decision_id == decision_id)).first()
        model["run"] = dict(run._mapping) if run is not None else None
        decision = (
            conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
            if decision_id
            else None
        )
        model["decision"] = dict(decision._mapping) if decision is not None else None
        model["events"] = (
            [
                {"id": e.id, "kind": e.kind.value, "source": e.source,
                 "line": subject_line(e.kind.value, asdict(e.subject))}
                for e in decision_events_full(conn, decision_id, 20)
            ]
            if decision_id
            else []
        )  # fmt: skip
    return found
