"""Commit statuses for decisions that came from a push (or the git poll): written into the
outbox in the transaction of the state change they report, sent later by the worker's sender.

Which commits: each covered code event's pushed commit (`after`) on the forge it came from,
plus the commit the run builds when git's branch head moved past it. One context per pipeline,
`retrain/<pipeline>` (`retrain` for a push no trigger took). What each state says:

    queued decision        pending   "queued behind run R"
    run submitted          running   "training: run R started" (GitHub, Gitea: pending)
    run succeeded          success   "model songs v7 published" | "trained, not published: ..."
    run failed             failure   "<step> failed: <message>"
    run canceled           canceled  "run R canceled"
    submission gave up     failure   "could not start: <error>"
    no run (any reason)    success   the decision's reason, e.g. "no change under pipeline/"

Idempotent per (forge, repository, commit, context, state): the same text again queues
nothing; a newer state supersedes an unsent older one, so a forge never ends on "pending".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from trigger_service.database import decision_events, decisions, events, runs
from trigger_service.events import Event, EventKind, subject_to_dict
from trigger_service.outbox.store import OutboxItem, enqueue
from trigger_service.statuses import StatusChannel, locate
from trigger_service.statuses.base import SHA, short
from trigger_service.tracking.runs import ACTIVE_STATES

MAX_TARGETS = 20  # distinct commits one status change is posted on (a coalesced burst)
Target = tuple[str, str, str]  # forge, repository path, commit


class StatusReporter:
    def __init__(
        self, channels: dict[str, StatusChannel], base_url: str, *, public: bool = True
    ) -> None:
        """`base_url`: the console's base (TRIGGER_PUBLIC_URL, else http://HOST:PORT);
        `public`: whether it was configured, else a run links to the KFP UI when it has one."""
        self.channels = channels
        self.base_url = base_url.rstrip("/")
        self.public = public

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    # --- hooks, each called inside the transaction of the change it reports
    def no_runs(
        self, conn: Connection, closed: Iterable[tuple[str, Event, str]], now: float
    ) -> None:
        """Closed no-run decisions: (decision id, its event, the reason)."""
        if not self.channels:
            return
        for decision_id, event, reason in closed:
            if event.kind is not EventKind.CODE:
                continue
            target = self._target(event.source, subject_to_dict(event.subject))
            if target is not None:
                self._post(
                    conn,
                    [target],
                    None,
                    "success",
                    reason,
                    self._decision_url(decision_id),
                    now,
                    decision_id=decision_id,
                )

    def decision_changed(self, conn: Connection, decision_id: str, now: float) -> None:
        """A decision was queued, suppressed, merged into another, or gave up without a run."""
        if not self.channels:
            return
        row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
        if row is None:
            return
        if row.state == "queued":
            active = conn.execute(
                select(runs.c.id)
                .where(runs.c.pipeline == row.pipeline, runs.c.state.in_(ACTIVE_STATES))
                .order_by(runs.c.created_at.desc())
            ).first()
            text = f"queued behind run {active.id}" if active else "queued behind the active run"
            state = "pending"
        elif row.outcome == "no_run":
            state, text = "success", row.reason
        elif row.state == "dead" and row.run_id is None:
            state, text = "failure", f"could not start: {row.last_error or row.reason}"
        else:
            return
        targets = self._decision_targets(conn, decision_id, row.version)
        url = self._decision_url(decision_id)
        self._post(conn, targets, row.pipeline, state, text, url, now, decision_id=decision_id)

    def run_changed(self, conn: Connection, run_id: str, now: float) -> None:
        """A run moved to a new state (tracking.runs.set_state said it changed)."""
        if not self.channels:
            return
        run = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if run is None:
            return
        described = describe_run(run)
        if described is None:
            return
        state, text = described
        targets = self._decision_targets(conn, run.decision_id, run.version)
        self._post(
            conn,
            targets,
            run.pipeline,
            state,
            text,
            self._run_url(run),
            now,
            decision_id=run.decision_id,
            run_id=run.id,
        )

    # --- where and what
    def _target(self, source: str, subject: dict[str, Any]) -> Target | None:
        sha = str(subject.get("after") or "")
        if subject.get("deleted") or not SHA.fullmatch(sha) or set(sha) == {"0"}:
            return None
        located = locate(self.channels, source, subject)
        return (located[0], located[1], sha) if located else None

    def _decision_targets(
        self, conn: Connection, decision_id: str, version: str | None
    ) -> list[Target]:
        rows = conn.execute(
            select(events.c.source, events.c.subject)
            .join(decision_events, decision_events.c.event_id == events.c.id)
            .where(decision_events.c.decision_id == decision_id, events.c.kind == "code")
            .order_by(decision_events.c.at, decision_events.c.event_id)
        ).all()
        targets: list[Target] = []
        for row in rows:
            target = self._target(row.source, row.subject)
            if target is not None and target not in targets:
                targets.append(target)
        # Git decides what trains: the branch head the run builds gets the status too.
        if targets and version and SHA.fullmatch(version):
            built = (targets[-1][0], targets[-1][1], version)
            if built not in targets:
                targets.append(built)
        return targets[-MAX_TARGETS:]

    def _run_url(self, run: Any) -> str:
        if run.url and not self.public:
            return str(run.url)  # the KFP UI, when no public console URL is configured
        return f"{self.base_url}/ui/runs/{run.id}"

    def _decision_url(self, decision_id: str) -> str:
        return f"{self.base_url}/decisions/{decision_id}"

    def _post(
        self,
        conn: Connection,
        targets: list[Target],
        pipeline: str | None,
        state: str,
        text: str,
        url: str,
        now: float,
        *,
        decision_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        context = f"retrain/{pipeline}" if pipeline else "retrain"
        for forge, repository, sha in targets:
            where = f"status:{forge}:{repository}:{sha}:{context}"
            payload = {
                "repository": repository,
                "sha": sha,
                "state": state,
                "context": context,
                "description": short(text),
                "target_url": url,
            }
            item = OutboxItem(
                channel=forge,
                key=f"{where}:{state}",
                ordering=where,
                payload=payload,
                run_id=run_id,
                decision_id=decision_id,
            )
            enqueue(conn, item, now, supersede=True)


def describe_run(run: Any) -> tuple[str, str] | None:
    """(status state, description) for a run's current state; None: nothing to say yet."""
    if run.state == "pending":
        # GitLab shows "running"; GitHub and Gitea have no such state and show "pending".
        return "running", f"training: run {run.id} started"
    if run.state == "running":
        return None  # already said when it was submitted: one call less against rate limits
    if run.state == "failed":
        step = f"{run.failed_step} failed" if run.failed_step else "failed"
        return "failure", f"{step}: {run.error or 'no message'}"
    if run.state == "canceled":
        return "canceled", f"run {run.id} canceled"
    if run.state != "succeeded":
        return None
    result = run.result or {}
    if run.model_version is not None:
        return "success", f"model {run.model_name} v{run.model_version} published"
    if result.get("shadow"):
        return "success", f"shadow run {run.id} recorded: nothing was trained"
    if result.get("published") is False:
        reason = str(result.get("reason") or "the champion stays").removeprefix("not published: ")
        return "success", f"trained, not published: {reason}"
    return "success", f"run {run.id} succeeded"
