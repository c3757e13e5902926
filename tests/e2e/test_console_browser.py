"""The console in a real browser: Debian's Chromium driven by Playwright (never a downloaded
browser), against the real app served on loopback with the local backend.

Clicked through: a manual trigger -> its decision -> its run (log streamed, steps) -> the model
it published -> the lineage that says why it serves; a run canceled; a dead letter replayed
after the rules are fixed; a trigger paused and resumed. The pipeline command is a stand-in that
behaves like `python -m pipeline run --local` (kfp.local's task lines, a published version with
its lineage); test_real_pipeline_run_in_the_console (slow) runs the real one. With
UPDATE_SCREENSHOTS=1 the screenshots are written to docs/img/, where docs/console.md shows them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.payloads import storage_event
from tests.support.inprocess import serving
from tests.support.repo import GitRepo
from trigger_service.service import Services
from trigger_service.settings import Settings
from trigger_service.submit.local import LocalBackend

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
TOKEN = "console-token"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

RULES = """\
policy:
  concurrency: queue-one
pipelines:
  - name: songs
    source:
      repository: {repo}
      branch: main
      package_path: pipeline.yaml
    defaults:
      data_uri: songs.csv
      model_name: songs
      epochs: 4
  - name: songs-nightly
    source:
      repository: {repo}
      branch: main
      package_path: pipeline.yaml
    defaults:
{nightly_defaults}
triggers:
  - name: new-data
    on: data
    pipeline: songs
    bucket: datasets
    prefix: songs/
  - name: by-hand
    on: manual
"""
BROKEN = "      model_name: songs-nightly\n"  # no data_uri: the local backend refuses the run
FIXED = "      model_name: songs-nightly\n      data_uri: songs.csv\n"

# Behaves like `python -m pipeline run --local ...`: kfp.local's task lines on stdout, then a
# published version with its lineage (metadata.json) and the result file the backend reads.
STAND_IN = r"""
import json, pathlib, sys, time
args = sys.argv[1:]
def arg(name): return args[args.index(name) + 1]
params = dict(a.split("=", 1) for i, a in enumerate(args) if i and args[i - 1] == "--param")
pause = float((pathlib.Path(__file__).parent / "sleep").read_text())
for task in ("load-data", "train", "evaluate", "publish"):
    print(f"Executing task '\x1b[96m{task}\x1b[0m'", flush=True)
    time.sleep(pause / 4)
    print(f"Task '\x1b[96m{task}\x1b[0m' finished with status \x1b[92mSUCCESS\x1b[0m", flush=True)
root = pathlib.Path(arg("--models-root")) / arg("--model-name")
root.mkdir(parents=True, exist_ok=True)
version = 1 + max([int(p.name) for p in root.iterdir() if p.name.isdigit()] or [0])
folder = root / str(version)
folder.mkdir()
(folder / "model.onnx").write_bytes(b"onnx")
(folder / "metadata.json").write_text(json.dumps({
    "model_name": arg("--model-name"), "version": version,
    "metrics": {"accuracy": 0.87, "f1": 0.84, "test_rows": 160},
    "lineage": {"decision_id": params.get("decision_id"), "git_commit": params.get("git_commit")},
}))
pathlib.Path(arg("--result-file")).write_text(json.dumps(
    {"status": "succeeded", "published": True, "model_version": version}))
print(f"published {arg('--model-name')} version {version}", flush=True)
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Console:
    """One service on loopback with the local backend and a stand-in pipeline command."""

    def __init__(self, tmp_path: Path, python: str | None = None) -> None:
        self.tmp = tmp_path
        self.repo = GitRepo(tmp_path / "repo")
        self.repo.commit({"pipeline.yaml": "# compiled pipeline\n"}, "compiled pipeline")
        self.rules = tmp_path / "rules.yaml"
        self.write_rules(BROKEN)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "stand_in.py").write_text(STAND_IN)
        self.sleep_file = bin_dir / "sleep"
        self.sleep_file.write_text("1.2")
        wrapper = bin_dir / "python"
        wrapper.write_text(
            f'#!/bin/sh\nshift 2\nexec {sys.executable} {bin_dir / "stand_in.py"} "$@"\n'
        )
        wrapper.chmod(0o755)
        self.settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
            rules_path=self.rules,
            backend="local",
            models_root=tmp_path / "models",
            data_dir=tmp_path / "data",
            runs_dir=tmp_path / "runs",
            git_cache_dir=tmp_path / "git-cache",
            manual_token=TOKEN,
            storage_token="storage-token",
            worker_poll_seconds=0.1,
        )
        backend = LocalBackend(
            runs_dir=self.settings.runs_dir,
            models_root=self.settings.models_root,
            data_dir=self.settings.data_dir,
            python=python or str(wrapper),
        )
        self.services = Services.build(self.settings, backend=backend)

    def write_rules(self, nightly_defaults: str) -> None:
        self.rules.write_text(RULES.format(repo=self.repo.url, nightly_defaults=nightly_defaults))
        # A later mtime than the last load, whatever the file system's clock resolution.
        stamp = time.time() + (getattr(self, "_bumps", 0) + 1)
        self._bumps = getattr(self, "_bumps", 0) + 1
        os.utime(self.rules, (stamp, stamp))


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Console, str]]:
    app = Console(tmp_path)
    with serving(app.services) as url:
        yield app, url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


def shot(page: Any, name: str) -> None:
    """A screenshot of the page as it is; into docs/img/ (checked in) with UPDATE_SCREENSHOTS=1,
    so an ordinary test run leaves the work tree clean."""
    image = page.screenshot(full_page=False)
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 10_000, "a rendered page"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        (IMAGES / f"console-{name}.png").write_bytes(image)


def sign_in(page: Any, url: str, token: str = TOKEN) -> None:
    page.goto(f"{url}/ui/signin")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/ui$"))
    assert page.locator("form[action='/ui/signout']").count() == 1


def reload_until(page: Any, selector: str, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in page.inner_text(selector):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {selector}"
        time.sleep(0.5)
        page.reload()


def trigger_from_pipelines(page: Any, url: str, pipeline: str, reason: str) -> str:
    page.goto(f"{url}/ui/pipelines")
    section = page.locator(f"#pipeline-{pipeline}")
    section.locator("input[name=reason]").fill(reason)
    section.locator(f"#trigger-{pipeline}").click()
    page.wait_for_url(re.compile(r"/ui\?"))
    message = page.inner_text(".message")
    assert message.startswith("stored "), message
    return message.removeprefix("stored ").strip()


def test_manual_trigger_to_run_to_model_to_lineage(page: Any, console: tuple[Console, str]) -> None:
    _app, url = console
    page.goto(f"{url}/ui")
    assert page.locator("#trigger-songs").count() == 0
    sign_in(page, url)
    event_id = trigger_from_pipelines(page, url, "songs", "retrain after the label fix")

    # The timeline refreshes itself: the decision appears without a reload.
    row = page.locator("#timeline-rows tr", has_text=event_id)
    row.locator("a", has_text="run").first.wait_for()
    assert "manual run by console: retrain after the label fix" in row.inner_text()

    row.locator("a[href^='/ui/decisions/']").click()
    # The timeline says "run" once the event is decided; the run record (and with it the
    # lineage values below) exists once the worker has submitted it, which under load is later.
    deadline = time.monotonic() + 30
    while page.locator("a[href^='/ui/runs/']").count() == 0:
        assert time.monotonic() < deadline, "the decision's run was never submitted"
        page.wait_for_timeout(200)
        page.reload()
    assert "by-hand" in page.inner_text("table.triggers")
    params = page.inner_text("#params")
    assert "pipeline songs default" in params and "the service (lineage)" in params
    assert event_id in params, "the lineage values the run was given"
    shot(page, "decision")

    page.locator("a[href^='/ui/runs/']").first.click()
    log = page.locator("#log")
    log.wait_for()
    page.wait_for_function("document.getElementById('log').dataset.ended === 'true'")
    assert "published songs version 1" in log.inner_text()
    # When the log ends the page shows the run's final state itself, and no cancel button.
    assert page.inner_text("#run-state") == "succeeded"
    assert page.locator("#cancel-run").count() == 0
    assert "publish: SUCCESS" in page.inner_text("ol.steps")
    shot(page, "run")

    page.click("#run-model")
    model = page.locator("#songs-1")
    assert "serving" in model.inner_text()
    lineage = model.locator("ul.lineage").inner_text()
    assert "retrain after the label fix" in lineage and event_id in lineage
    assert "0.87" in model.locator("table.metrics").inner_text()
    shot(page, "models")

    # More traffic for the timeline: new data (runs), data elsewhere (no run), a filter.
    for key in ("songs/2026-11.csv", "images/cat.png"):
        stored = httpx.post(
            f"{url}/webhooks/storage",
            json=storage_event("datasets", key, 100),
            headers={"Authorization": "Bearer storage-token"},
        )
        assert stored.status_code == 202, stored.text
    page.goto(f"{url}/ui")
    rows = page.locator("#timeline-rows")
    rows.locator("tr", has_text="images/cat.png").locator("a").first.wait_for()
    cat = rows.locator("tr", has_text="images/cat.png").inner_text()
    assert "no_run" in cat, cat
    shot(page, "timeline")
    page.select_option("select[name=outcome]", "no_run")
    page.click("form.filters button[type=submit]")
    assert "images/cat.png" in rows.inner_text() and event_id not in rows.inner_text()


def test_a_run_page_shows_the_final_state_when_its_log_ends(
    page: Any, console: tuple[Console, str]
) -> None:
    app, url = console
    app.sleep_file.write_text("4")
    try:
        sign_in(page, url)
        event_id = trigger_from_pipelines(page, url, "songs", "watched to the end")
        row = page.locator("#timeline-rows tr", has_text=event_id)
        row.locator("a[href^='/ui/runs/']").wait_for()
        row.locator("a[href^='/ui/runs/']").click()
        page.locator("#log").wait_for()
        assert page.inner_text("#run-state") in ("submitting", "pending", "running")
        assert page.locator("#cancel-run").count() == 1
        page.wait_for_function(
            "document.getElementById('log').dataset.ended === 'true'", timeout=60_000
        )
        # No reload: the tag says how the run ended, the cancel button is gone and the model
        # the run published (recorded with its final state) is linked.
        assert page.inner_text("#run-state") == "succeeded"
        assert page.locator("#cancel-run").count() == 0
        assert page.locator("#run-model").inner_text().startswith("songs version ")
    finally:
        app.sleep_file.write_text("1.2")


def test_a_running_run_is_canceled_from_its_page(page: Any, console: tuple[Console, str]) -> None:
    app, url = console
    app.sleep_file.write_text("60")
    sign_in(page, url)
    event_id = trigger_from_pipelines(page, url, "songs", "to be canceled")
    row = page.locator("#timeline-rows tr", has_text=event_id)
    row.locator("a[href^='/ui/runs/']").wait_for()
    row.locator("a[href^='/ui/runs/']").click()
    page.wait_for_function(
        "document.getElementById('log') && "
        "document.getElementById('log').textContent.includes('train')"
    )
    # The step list follows the log without a reload.
    page.wait_for_function(
        "document.getElementById('steps').textContent.includes('train: RUNNING')"
    )
    assert "load-data: SUCCESS" in page.inner_text("#steps")
    page.click("#cancel-run")
    assert page.inner_text(".message") == "canceled by an operator"
    assert page.inner_text("#run-state") == "canceled"
    assert "canceled by an operator" in page.inner_text("ol.states")
    # The step that was running when the run was stopped does not still read RUNNING.
    steps = page.inner_text("#steps")
    assert "RUNNING" not in steps and "STOPPED (the run ended canceled" in steps, steps
    shot(page, "run-canceled")
    assert not (app.settings.models_root / "songs").exists(), "nothing published"


def test_a_dead_letter_is_replayed_after_the_rules_are_fixed(
    page: Any, console: tuple[Console, str]
) -> None:
    app, url = console
    sign_in(page, url)
    event_id = trigger_from_pipelines(page, url, "songs-nightly", "nightly")
    page.goto(f"{url}/ui/dead")
    reload_until(page, "main", event_id)
    dead = page.locator(f"#dead-{event_id}")
    assert "needs a data_uri" in dead.inner_text()
    shot(page, "dead-letters")

    app.write_rules(FIXED)
    page.goto(f"{url}/ui/rules")  # reading the rules reloads the edited file
    page.goto(f"{url}/ui/dead")
    page.locator(f"#dead-{event_id} button").click()
    assert page.inner_text(".message") == f"{event_id} sent through again"
    page.goto(f"{url}/ui?q={event_id}")
    # The event now has two decisions: the dead one, and the replay's, which ran.
    reload_until(page, "#timeline-rows", "run · submitted")
    rows = page.locator("#timeline-rows tr", has_text=event_id)
    assert rows.count() == 2 and "run · dead" in " ".join(rows.all_inner_texts())
    assert page.locator("#dead-" + event_id).count() == 0


def test_a_trigger_is_paused_and_resumed(page: Any, console: tuple[Console, str]) -> None:
    _app, url = console
    sign_in(page, url)
    page.goto(f"{url}/ui/rules")
    trigger_row = page.locator("#trigger-by-hand")
    trigger_row.locator("input[name=reason]").fill("labels are being fixed")
    trigger_row.locator("button").click()
    assert page.inner_text(".message") == "by-hand: paused"
    assert "labels are being fixed" in page.inner_text("#trigger-by-hand")
    assert len(page.inner_text("#rules-sha")) == 64

    event_id = trigger_from_pipelines(page, url, "songs", "while paused")
    row = page.locator("#timeline-rows tr", has_text=event_id)
    row.locator("a[href^='/ui/decisions/']").wait_for()
    assert "trigger paused: by-hand" in row.inner_text()
    page.goto(f"{url}/ui/rules")
    shot(page, "rules-paused")

    page.locator("#trigger-by-hand button").click()
    assert page.inner_text(".message") == "by-hand: active"


def test_a_refused_rules_edit_shows_with_its_error(page: Any, console: tuple[Console, str]) -> None:
    app, url = console
    page.goto(f"{url}/ui/rules")
    before = page.inner_text("#rules-sha")
    app.rules.write_text(app.rules.read_text() + "  - name: broken\n    on: nonsense\n")
    stamp = time.time() + 30
    os.utime(app.rules, (stamp, stamp))
    page.reload()
    assert page.inner_text("#rules-sha") == before
    assert "triggers" in page.inner_text("#refused")


@pytest.mark.slow
def test_real_pipeline_run_in_the_console(browser: Any, tmp_path: Path) -> None:
    """The embedded default for real: the TensorFlow pipeline under kfp.local."""
    app = Console(tmp_path, python=sys.executable)
    compiled = tmp_path / "pipeline.yaml"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", "--output", str(compiled)],
        check=True,
        capture_output=True,
    )
    app.repo.commit({"pipeline.yaml": compiled.read_text()}, "the real compiled pipeline")
    subprocess.run(
        [sys.executable, "-m", "pipeline", "demo-data", "--output",
         str(tmp_path / "data" / "songs.csv"), "--rows", "800"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    with serving(app.services) as url:
        sign_in(tab, url)
        event_id = trigger_from_pipelines(tab, url, "songs", "real run")
        row = tab.locator("#timeline-rows tr", has_text=event_id)
        row.locator("a[href^='/ui/runs/']").wait_for(timeout=120_000)
        row.locator("a[href^='/ui/runs/']").click()
        reload_until(tab, "#run-state", "succeeded", timeout=900)
        steps = tab.inner_text("ol.steps")
        assert "SUCCESS" in steps
        shot(tab, "run-real")
        tab.click("#run-model")
        assert "serving" in tab.inner_text("section.model.serving")
        assert "real run" in tab.inner_text("section.model.serving ul.lineage")
    context.close()
