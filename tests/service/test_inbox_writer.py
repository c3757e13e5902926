"""The inbox writer thread outlives any bad delivery, and answers only after its commit."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.service.conftest import Build, FakeClock
from tests.service.test_worker import data_event
from trigger_service.events import Event, EventKind
from trigger_service.store_errors import StoreUnavailable


def test_a_bad_delivery_fails_alone_and_the_writer_goes_on(build: Build, clock: FakeClock) -> None:
    services = build()
    bad = Event("bad", EventKind.DATA, "storage", object(), clock.datetime())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        services.inbox.store([bad])
    assert services.inbox.writer_alive
    (result,) = services.inbox.store([data_event(clock, "songs/a.csv")])
    assert result.new


def test_a_lock_held_elsewhere_is_a_prompt_store_unavailable(
    build: Build, clock: FakeClock
) -> None:
    services = build(store_timeout_seconds=1.0)
    path = services.engine.url.database
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            " c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(5)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as error:
            services.inbox.store([data_event(clock, "songs/b.csv")])
        assert time.monotonic() - started < 4
        assert "locked" in str(error.value)
        assert type(error.value.__cause__).__name__ == "OperationalError"  # chained
        assert services.inbox.writer_alive
    finally:
        holder.kill()
        holder.wait(10)
    (result,) = services.inbox.store([data_event(clock, "songs/b.csv")])
    assert result.new  # nothing of the refused attempt was stored
