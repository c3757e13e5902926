"""`make run` as a newcomer meets it: ports from variables, checked before anything is printed,
and a clean stop on SIGTERM (no `make: *** Error 241`); the demo loop's heartbeat."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from demo.loop import Progress
from demo.payloads import drift_alert
from demo.ports import port_problem
from demo.run import curl_lines
from demo.workspace import ROUTES, Demo
from tests.support.server import REPO_ROOT, free_port
from trigger_service.events import utcnow
from trigger_service.sources import SOURCES
from trigger_service.sources.alertmanager import label_fingerprint

MAKE = shutil.which("make")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_")}
    return {**clean, "PYTHONPATH": str(REPO_ROOT)}


def demo_run(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo",
            "run",
            "--var",
            str(tmp_path / "var"),
            *args,
        ],
        cwd=REPO_ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_port_problems_are_named() -> None:
    assert port_problem("PORT", free_port()) is None
    assert port_problem("PORT", 0) == "PORT=0 is not a TCP port (1-65535)"
    assert port_problem("S3_PORT", 99999) == "S3_PORT=99999 is not a TCP port (1-65535)"


@pytest.mark.parametrize("which", ["--port", "--s3-port"])
def test_a_taken_port_stops_the_demo_before_it_prints_or_prepares_anything(
    tmp_path: Path, taken_port: int, which: str
) -> None:
    started = time.monotonic()
    other = "--s3-port" if which == "--port" else "--port"
    process = demo_run(tmp_path, which, str(taken_port), other, str(free_port()))
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    name = "PORT" if which == "--port" else "S3_PORT"
    assert output.splitlines() == [
        f"error: {name}={taken_port} cannot be used on 127.0.0.1 (Address already in use); "
        "choose another, e.g. make run PORT=8081"
    ]
    assert time.monotonic() - started < 10
    assert not (tmp_path / "var").exists()


def test_the_same_port_twice_is_refused(tmp_path: Path) -> None:
    port = str(free_port())
    process = demo_run(tmp_path, "--port", port, "--s3-port", port)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert output.startswith(f"error: PORT and S3_PORT are both {port}; choose another")
    assert not (tmp_path / "var").exists()


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc)."""
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _wait_for_curl_lines(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 90
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Then look:"):
            # The addresses go on on the next line (the console first, issue 15).
            seen.append(process.stdout.readline())
            return "".join(seen)
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError("the demo ended before printing its curl lines:\n" + "".join(seen))


@pytest.mark.slow
def test_sigterm_stops_the_demo_and_its_servers_with_exit_code_0(tmp_path: Path) -> None:
    port, s3_port = free_port(), free_port()
    process = demo_run(tmp_path, "--port", str(port), "--s3-port", str(s3_port))
    try:
        printed = _wait_for_curl_lines(process)
        # The curl lines are printed once the service answers on the port they name.
        assert f"http://127.0.0.1:{port}/trigger" in printed
        assert "grafana" in printed  # every sender has its demo secret
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        process.send_signal(signal.SIGTERM)  # to the demo process only, as a supervisor does
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while port_problem("PORT", port) or port_problem("S3_PORT", s3_port):
        assert time.monotonic() < deadline, "a demo server outlived the demo"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_run_takes_ports_from_variables_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    assert MAKE is not None
    process = subprocess.Popen(
        [
            MAKE,
            "--no-print-directory",
            "-o",
            ".venv/.installed",  # the shared virtualenv is already installed
            "run",
            f"BIN={Path(sys.executable).parent}",
            f"PORT={port}",
            "S3_PORT=0",
            f"VAR={tmp_path / 'var'}",
        ],
        cwd=REPO_ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        printed = _wait_for_curl_lines(process)
        assert f"--port {port} --s3-port 0" in printed
        assert f"http://127.0.0.1:{port}/runs" in printed
        # SIGTERM to the demo, as a supervisor stopping the service does. (A SIGTERM to make
        # itself makes make report its own termination, whatever the recipe does.)
        (demo,) = children(process.pid)
        os.kill(demo, signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, rest
    assert "make: ***" not in rest and "Error" not in rest, rest


def test_the_heartbeat_says_the_same_step_is_still_running() -> None:
    progress = Progress(started=100.0, every=15)
    step = "running   [pipeline] train: epoch 3/8"
    assert progress.line("r-1", step, now=110.0) == f"   [   10s] r-1 {step}"
    assert progress.line("r-1", step, now=120.0) is None
    beat = progress.line("r-1", step, now=126.0)
    assert beat == "   [   26s] r-1   ... same step, still running (16s so far)"
    assert step not in beat  # not the step's line again: that read as a restart
    assert progress.line("r-1", step, now=135.0) is None
    assert progress.line("r-1", step, now=142.0) == (
        "   [   42s] r-1   ... same step, still running (32s so far)"
    )
    nxt = "running   [pipeline] evaluate"
    assert progress.line("r-1", nxt, now=143.0) == f"   [   43s] r-1 {nxt}"


def test_every_printed_curl_line_is_a_body_its_route_accepts(tmp_path: Path) -> None:
    tokens = {route: f"token-{route}" for route in ROUTES}
    text = curl_lines(Demo(tmp_path, 8080, 9100, tokens))
    commands = re.findall(
        r"curl -sS -X POST http://127\.0\.0\.1:8080(/\S+)(.*?)-d '(.*?)'\n", text, re.S
    )
    routes = {"/trigger": "manual"} | {f"/webhooks/{name}": name for name in SOURCES}
    assert [routes[path] for path, _, _ in commands] == [
        "manual",
        "storage",
        "alertmanager",
        "grafana",
    ]
    for path, headers, body in commands:
        name = routes[path]
        assert f"Bearer {tokens[name]}" in headers
        SOURCES[name].verify(
            {"authorization": f"Bearer {tokens[name]}"}, body.encode(), tokens[name]
        )
        assert SOURCES[name].parse({}, body.encode(), utcnow())


def test_the_demos_drift_alert_is_the_one_the_shipped_rule_fires() -> None:
    # The demo stands in for Alertmanager relaying the chart's ModelDrift rule: its alert
    # carries that rule's labels (the console shows them with the event) and its summary.
    manifest = yaml.safe_load_all(
        (REPO_ROOT / "manifests" / "overlays" / "dev" / "prometheusrule.yaml").read_text()
    )
    rules = [r for doc in manifest for g in doc["spec"]["groups"] for r in g["rules"]]
    (rule,) = [r for r in rules if r.get("alert") == "ModelDrift"]
    body = drift_alert()
    (alert,) = body["alerts"]
    assert alert["labels"] == {"alertname": "ModelDrift", **rule["labels"]}
    assert body["commonLabels"] == alert["labels"]
    assert "summary" in alert["annotations"] and "summary" in body["commonAnnotations"]
    assert alert["fingerprint"] == label_fingerprint(alert["labels"])
    (event,) = SOURCES["alertmanager"].parse({}, json.dumps(body).encode(), utcnow())
    assert event.subject.labels == alert["labels"]
