"""The operator CLI against a real `serve` process on loopback, submitting to the KFP REST double:
status, events, decisions, runs, logs, cancel (a run and a waiting decision), replay, pause and
resume, typed --param values, the URL and token from the environment."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.kfp_double import KfpDouble
from tests.support.repo import GitRepo, rules_text
from tests.support.server import REPO_ROOT, ServiceProcess, running_service
from tests.support.tiny_pipeline import compile_tiny
from tests.support.waiting import wait_for
from trigger_service.cli import build_parser, main

TOKEN = "operator-token"


@pytest.fixture(scope="module")
def kfp() -> Iterator[KfpDouble]:
    with KfpDouble() as double:
        yield double


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, kfp: KfpDouble) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    repo = GitRepo(tmp / "repo")
    package = compile_tiny(tmp / "compiled.yaml")
    repo.commit({"pipeline.yaml": package.read_text()}, "compiled pipeline")
    rules = rules_text(repo.url, concurrency="parallel").replace(
        "      model_name: songs\n", "      model_name: songs\n      epochs: 5\n      fast: false\n"
    )
    (tmp / "rules.yaml").write_text(rules)
    (tmp / "sa-token").write_text("sa-token")
    env = {
        "TRIGGER_DATABASE_URL": f"sqlite:///{tmp / 'trigger.db'}",
        "TRIGGER_RULES_PATH": str(tmp / "rules.yaml"),
        "TRIGGER_GIT_CACHE_DIR": str(tmp / "git-cache"),
        "TRIGGER_BACKEND": "kfp",
        "TRIGGER_KFP_HOST": kfp.url,
        "TRIGGER_KFP_TOKEN_PATH": str(tmp / "sa-token"),
        "TRIGGER_KFP_POLL_SECONDS": "0.3",
        "TRIGGER_MANUAL_TOKEN": TOKEN,
        "TRIGGER_STORAGE_TOKEN": "storage-token",
        "TRIGGER_RETRY_BASE_SECONDS": "0.2",
        "TRIGGER_MAX_ATTEMPTS": "1",
    }
    with running_service(env, tmp / "service.log") as process:
        yield process


@pytest.fixture
def cli(
    service: ServiceProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """Run `trigger-service ARGS` in this process; the URL and token come from the environment."""
    monkeypatch.setenv("TRIGGER_URL", service.url)
    monkeypatch.setenv("TRIGGER_MANUAL_TOKEN", TOKEN)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def trigger(cli: Any, *args: str) -> str:
    code, out, err = cli("trigger", "songs", *args)
    assert code == 0, out + err
    return str(json.loads(out)["accepted"][0])


def decision_for(service: ServiceProcess, event_id: str) -> dict[str, Any]:
    def decided() -> Any:
        event = httpx.get(f"{service.url}/events/{event_id}").json()
        return event["decisions"][0] if event["decisions"] else None

    return dict(httpx.get(f"{service.url}/decisions/{wait_for(decided)}").json())


def test_params_are_sent_typed_and_an_unparsable_one_is_refused(
    cli: Any, service: ServiceProcess
) -> None:
    event_id = trigger(cli, "--param", "epochs=10", "--param", "fast=true", "--reason", "typed")
    subject = httpx.get(f"{service.url}/events/{event_id}").json()["subject"]
    assert subject["params"] == {"epochs": 10, "fast": True}
    with pytest.raises(SystemExit):
        cli("trigger", "songs", "--param", "no-equals-sign")


def test_a_run_is_listed_followed_and_canceled(
    cli: Any, service: ServiceProcess, kfp: KfpDouble
) -> None:
    event_id = trigger(cli, "--reason", "cancel me")
    run_id = wait_for(lambda: decision_for(service, event_id)["run_id"])
    wait_for(lambda: httpx.get(f"{service.url}/runs/{run_id}").json()["external_id"])
    code, out, _ = cli("runs", "--state", "pending")
    assert code == 0 and run_id in out and "kfp" in out

    code, out, err = cli("logs", run_id)
    assert code == 1 and "has no log here" in err, "KFP keeps the logs of its runs"

    code, out, err = cli("cancel", run_id)
    assert code == 0, err
    assert "cancel requested" in out
    external = httpx.get(f"{service.url}/runs/{run_id}").json()["external_id"]
    assert kfp.runs[external]["state"] == "CANCELING"
    kfp.advance_run(external, "CANCELED")
    wait_for(lambda: httpx.get(f"{service.url}/runs/{run_id}").json()["state"] == "canceled")
    code, out, err = cli("cancel", run_id)
    assert code == 1 and "already ended: canceled" in err
    code, out, _ = cli("runs", "-o", "json", "--limit", "5")
    assert code == 0
    assert {r["id"]: r["state"] for r in json.loads(out)["items"]}[run_id] == "canceled"


def test_a_waiting_decision_is_canceled_before_it_runs(cli: Any, service: ServiceProcess) -> None:
    body = {"EventName": "s3:ObjectCreated:Put", "Key": "datasets/songs/b.csv", "Records": [{
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": "datasets"},
               "object": {"key": "songs/b.csv", "eTag": "e2", "size": 5, "sequencer": "02"}},
    }]}  # fmt: skip
    stored = httpx.post(
        f"{service.url}/webhooks/storage",
        json=body,
        headers={"Authorization": "Bearer storage-token"},
    )
    assert stored.status_code == 202, stored.text
    decision = decision_for(service, stored.json()["accepted"][0])
    assert decision["state"] == "collecting"
    code, out, err = cli("cancel", decision["id"])
    assert code == 0 and "canceled" in out, err
    code, out, _ = cli("decisions", "--state", "canceled")
    assert decision["id"] in out and "canceled by an operator" in out


def test_pause_resume_and_status(cli: Any, service: ServiceProcess) -> None:
    code, out, err = cli("pause", "by-hand", "--reason", "maintenance")
    assert code == 0 and out.strip() == "by-hand: paused", err
    code, out, _ = cli("status")
    assert code == 0 and "by-hand (PAUSED)" in out and "code (active)" in out
    event_id = trigger(cli)
    assert decision_for(service, event_id)["reason"] == "trigger paused: by-hand"
    code, out, _ = cli("resume", "by-hand")
    assert code == 0 and out.strip() == "by-hand: active"
    code, out, err = cli("pause", "no-such-trigger")
    assert code == 1 and "not in the rules in force" in err
    code, out, _ = cli("status", "-o", "json")
    status = json.loads(out)
    assert {t["name"]: t["paused"] for t in status["rules"]["triggers"]}["by-hand"] is False
    assert set(status["backlog"]) >= {"pending", "decided", "dead"}


def test_a_dead_letter_is_replayed(cli: Any, service: ServiceProcess, kfp: KfpDouble) -> None:
    kfp.deny("permission denied for this test", status=403)
    try:
        event_id = trigger(cli, "--reason", "dead letter")
        wait_for(lambda: httpx.get(f"{service.url}/events/{event_id}").json()["status"] == "dead")
    finally:
        kfp.allow()
    code, out, _ = cli("events", "--status", "dead")
    assert code == 0 and event_id in out
    code, out, _ = cli("status")
    assert "dead letters (" in out and event_id in out
    code, out, err = cli("replay", event_id)
    assert code == 0 and f"{event_id}: pending" in out, err
    wait_for(lambda: httpx.get(f"{service.url}/events/{event_id}").json()["status"] == "decided")


def test_the_installed_entry_point_reads_flags_and_refuses_a_bad_token(
    service: ServiceProcess,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-m", "trigger_service"]
    done = subprocess.run(
        [*command, "status", "--url", service.url, "--token", TOKEN],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "recent decisions" in done.stdout, done.stderr
    denied = subprocess.run(
        [*command, "pause", "code", "--url", service.url, "--token", "wrong"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert denied.returncode == 1 and denied.stderr.startswith("error: 401")
    gone = subprocess.run(
        [*command, "runs", "--url", "http://127.0.0.1:9"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert gone.returncode == 2 and "cannot reach" in gone.stderr


def test_every_option_of_every_command_has_a_help_text() -> None:
    def without_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
        found = []
        for action in parser._actions:
            if not action.help:
                found.append(f"{path} {action.dest}")
            if isinstance(action, argparse._SubParsersAction):  # nested commands too
                for name, command in action.choices.items():
                    found += without_help(command, f"{path} {name}")
        return found

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [m for name, command in sub.choices.items() for m in without_help(command, name)]
    assert not missing, missing
