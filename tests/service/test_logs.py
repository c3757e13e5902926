"""Log lines carry the event, decision and run ids in both formats (JSON and terminal text)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from trigger_service import logs


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_text_logs_carry_the_ids(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", as_json=False)
    log = logging.getLogger("trigger_service.worker.submitting")
    log.info("run submitted", extra={"decision_id": "d-1", "run_id": "r-1", "pipeline": "songs"})
    log.info("event stored", extra={"event_id": "github-abc", "source": "github"})
    log.info("nothing to say")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("INFO run submitted decision_id=d-1 run_id=r-1 pipeline=songs")
    assert lines[1].endswith("INFO event stored event_id=github-abc source=github")
    assert lines[2].endswith("INFO nothing to say")


@pytest.mark.usefixtures("restore_root_logging")
def test_ids_stay_on_the_first_line_of_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", as_json=False)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("decision failed", extra={"event_id": "e-9"})
    first, *rest = capsys.readouterr().err.splitlines()
    assert first.endswith("ERROR decision failed event_id=e-9")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"


@pytest.mark.usefixtures("restore_root_logging")
def test_json_logs_carry_the_same_ids(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", as_json=True)
    logging.getLogger("y").warning("cut", extra={"event_id": "e-1", "run_id": "r-2"})
    line = json.loads(capsys.readouterr().err)
    assert (line["message"], line["event_id"], line["run_id"]) == ("cut", "e-1", "r-2")
