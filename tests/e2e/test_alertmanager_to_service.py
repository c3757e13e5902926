"""A real Alertmanager notifying the real service: a firing drift alert, re-sent every repeat
interval, is stored once and runs once; its resolution is stored and decided "no run"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.alertmanager import BINARY, MISSING, alert, alertmanager, post_alerts
from tests.support.repo import GitRepo, rules_text
from tests.support.server import ServiceProcess, running_service
from tests.support.waiting import wait_for

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


@pytest.fixture
def api(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def stored(api: httpx.Client) -> list[dict]:
    """The Alertmanager events the service has stored."""
    items: list[dict] = api.get("/events", params={"source": "alertmanager"}).json()["items"]
    return items


def a_minute_ago() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def duplicates(api: httpx.Client) -> float:
    """How many Alertmanager deliveries the service answered as already stored."""
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "trigger_events_received_total" and sample.labels == {
                "outcome": "duplicate",
                "source": "alertmanager",
            }:
                return sample.value
    return 0.0


def test_alertmanager_repeats_are_one_event_one_run_and_resolved_runs_nothing(
    service: ServiceProcess, api: httpx.Client, tmp_path: Path
) -> None:
    webhook = f"{service.url}/webhooks/alertmanager"
    started = a_minute_ago()

    with alertmanager(tmp_path, webhook, TOKEN) as url:
        post_alerts(url, [alert("songs", started)])
        wait_for(lambda: len(stored(api)) == 1, "the firing alert to be stored")
        # Alertmanager re-sends the unchanged group every repeat interval: wait for two repeats
        # to be answered as duplicates, then the store still holds one event.
        wait_for(lambda: duplicates(api) >= 2, "two repeats to arrive as duplicates")
        assert len(stored(api)) == 1, "repeats are the same event"
        post_alerts(url, [alert("songs", started, ends=datetime.now(UTC) - timedelta(seconds=1))])
        wait_for(lambda: len(stored(api)) == 2, "the resolved notice to be stored")
        wait_for(lambda: all(e["status"] == "decided" for e in stored(api)), "both to be decided")

    runs = api.get("/runs").json()["items"]
    assert len(runs) == 1, runs
    decisions = api.get("/decisions").json()["items"]
    reasons = {d["outcome"]: d["reason"] for d in decisions}
    assert "run" in reasons and "ModelDrift" in reasons["run"]
    assert "resolved" in reasons["no_run"]
    log = (tmp_path / "service" / "service.log").read_text()
    assert "Traceback" not in log


def test_a_group_cut_by_max_alerts_is_recorded_and_warned_about(
    service: ServiceProcess, api: httpx.Client, tmp_path: Path
) -> None:
    webhook = f"{service.url}/webhooks/alertmanager"
    started = a_minute_ago()

    with alertmanager(tmp_path, webhook, TOKEN, max_alerts=1) as url:
        post_alerts(url, [alert(model, started) for model in ("songs", "albums", "artists")])
        wait_for(lambda: len(stored(api)) >= 1, "the cut notification to be stored")

    # Alertmanager sent one alert of three and counted the other two in truncatedAlerts.
    details = [api.get(f"/events/{e['id']}").json() for e in stored(api)]
    assert len(details) == 1, details
    assert details[0]["subject"]["truncated_alerts"] == 2
    log = (tmp_path / "service" / "service.log").read_text()
    warnings = [line for line in log.splitlines() if '"level": "warning"' in line and "cut" in line]
    assert warnings, log[-2000:]
    assert 'cut 2 alert(s) from group {}:{alertname=\\"ModelDrift\\"}' in warnings[0]
    assert details[0]["id"] in warnings[0]
    metrics = api.get("/metrics").text
    assert 'trigger_alerts_truncated_total{source="alertmanager"}' in metrics
