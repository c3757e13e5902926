"""A real Alertmanager notifying the real service: a firing drift alert, re-sent every repeat
interval, is stored once and runs once; its resolution is stored and decided "no run"."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.alertmanager import BINARY, MISSING, alert, alertmanager, post_alerts
from tests.support.repo import GitRepo, rules_text
from tests.support.server import ServiceProcess, running_service

pytestmark = [pytest.mark.slow, pytest.mark.skipif(BINARY is None, reason=MISSING)]
TOKEN = "am-token"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled pipeline\n"}, "init")
    (tmp_path / "rules.yaml").write_text(rules_text(repo.url))
    env = {
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp_path / 'trigger.db'}",
        "TRIGGER_RULES_PATH": str(tmp_path / "rules.yaml"),
        "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_ALERTMANAGER_TOKEN": TOKEN,
    }
    with running_service(env, tmp_path / "service" / "service.log") as process:
        yield process


def wait(condition, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_alertmanager_repeats_are_one_event_one_run_and_resolved_runs_nothing(
    service: ServiceProcess, tmp_path: Path
) -> None:
    api = httpx.Client(base_url=service.url, timeout=10)
    webhook = f"{service.url}/webhooks/alertmanager"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    def events() -> list[dict]:
        return api.get("/events", params={"source": "alertmanager"}).json()["items"]

    with alertmanager(tmp_path, webhook, TOKEN) as url:
        post_alerts(url, [alert("songs", started)])
        wait(lambda: len(events()) == 1, "the firing alert to be stored")
        time.sleep(5)  # two more repeat intervals: Alertmanager re-sends the same alert
        assert len(events()) == 1, "repeats are the same event"
        post_alerts(url, [alert("songs", started, ends=datetime.now(UTC) - timedelta(seconds=1))])
        wait(lambda: len(events()) == 2, "the resolved notice to be stored")
        wait(lambda: all(e["status"] == "decided" for e in events()), "both to be decided")

    runs = api.get("/runs").json()["items"]
    assert len(runs) == 1, runs
    decisions = api.get("/decisions").json()["items"]
    reasons = {d["outcome"]: d["reason"] for d in decisions}
    assert "run" in reasons and "ModelDrift" in reasons["run"]
    assert "resolved" in reasons["no_run"]
    log = (tmp_path / "service" / "service.log").read_text()
    assert "Traceback" not in log
    metrics = api.get("/metrics").text
    assert 'trigger_events_received_total{outcome="duplicate",source="alertmanager"}' in metrics


def test_a_group_cut_by_max_alerts_is_recorded_and_warned_about(
    service: ServiceProcess, tmp_path: Path
) -> None:
    api = httpx.Client(base_url=service.url, timeout=10)
    webhook = f"{service.url}/webhooks/alertmanager"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    def events() -> list[dict]:
        return api.get("/events", params={"source": "alertmanager"}).json()["items"]

    with alertmanager(tmp_path, webhook, TOKEN, max_alerts=1) as url:
        post_alerts(url, [alert(model, started) for model in ("songs", "albums", "artists")])
        wait(lambda: len(events()) >= 1, "the cut notification to be stored")

    # Alertmanager sent one alert of three and counted the other two in truncatedAlerts.
    stored = [api.get(f"/events/{e['id']}").json() for e in events()]
    assert len(stored) == 1, stored
    assert stored[0]["subject"]["truncated_alerts"] == 2
    log = (tmp_path / "service" / "service.log").read_text()
    warnings = [line for line in log.splitlines() if '"level": "warning"' in line and "cut" in line]
    assert warnings, log[-2000:]
    assert 'cut 2 alert(s) from group {}:{alertname=\\"ModelDrift\\"}' in warnings[0]
    assert stored[0]["id"] in warnings[0]
    metrics = api.get("/metrics").text
    assert 'trigger_alerts_truncated_total{source="alertmanager"}' in metrics
