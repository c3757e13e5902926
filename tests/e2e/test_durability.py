"""An answer of 202 means stored: several clients send events, the server is killed with SIGKILL
mid-load, restarted on the same SQLite file, and every event it had acknowledged is there.

The service commits an event before it answers (SQLite in WAL mode, synchronous=FULL), so no
acknowledged event may be missing after a crash. Requests cut off by the kill got no answer and
may or may not have been stored; the test reports how many there were and how many survived.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from demo.payloads import storage_event
from tests.support.repo import GitRepo, rules_text
from tests.support.server import start_service
from trigger_service.database import events
from trigger_service.events import utcnow
from trigger_service.sources import SOURCES

CLIENTS = 6
KILL_AFTER = 300  # acknowledged events before the SIGKILL, while every client is still sending
PER_CLIENT_LIMIT = 2000  # a bound: a client stops after this many requests in any case
LOAD_TIMEOUT = 20.0
TOKEN = "storage-token"


@dataclass
class Tally:
    """What the clients saw: acknowledged ids, ids cut off mid-request, other answers."""

    acknowledged: set[str] = field(default_factory=set)
    in_flight: set[str] = field(default_factory=set)  # sent, no answer (connection broke)
    refused: int = 0  # could not connect at all: nothing sent
    other: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def event_id(body: bytes) -> str:
    """The id the service derives for this delivery (the same parser the route uses)."""
    (event,) = SOURCES["storage"].parse({}, body, utcnow())
    return event.id


def client(number: int, url: str, tally: Tally, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as http:
        for i in range(PER_CLIENT_LIMIT):
            if stop.is_set():
                return
            body = json.dumps(
                storage_event("datasets", f"songs/c{number}-{i:05d}.csv", 10 + i)
            ).encode()
            ident = event_id(body)
            try:
                response = http.post(f"{url}/webhooks/storage", content=body, headers=headers)
            except httpx.ConnectError:
                with tally.lock:
                    tally.refused += 1  # the server is gone: this request never reached it
                return
            except httpx.TransportError:
                with tally.lock:
                    tally.in_flight.add(ident)  # sent, then the connection died: no answer
                return
            with tally.lock:
                if response.status_code == 202 and response.json()["accepted"] == [ident]:
                    tally.acknowledged.add(ident)
                else:
                    tally.other.append(f"{response.status_code} {response.text[:200]}")


def test_every_acknowledged_event_survives_sigkill(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"pipeline.yaml": "# compiled pipeline v1\n"}, "init")
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(rules_text(repo.url, debounce=30, max_wait=60))
    database = tmp_path / "store" / "trigger.db"
    env = {
        "TRIGGER_DATABASE_URL": f"sqlite:///{database}",
        "TRIGGER_RULES_PATH": str(rules_path),
        "TRIGGER_BACKEND": "shadow",
        "TRIGGER_STORAGE_TOKEN": TOKEN,
        "TRIGGER_GIT_CACHE_DIR": str(tmp_path / "git-cache"),
        "TRIGGER_RUNS_DIR": str(tmp_path / "runs"),
        "TRIGGER_MODELS_ROOT": str(tmp_path / "models"),
    }

    first = start_service(env, tmp_path / "first.log")
    tally, stop = Tally(), threading.Event()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(client, n, first.url, tally, stop) for n in range(CLIENTS)]
            deadline = time.monotonic() + LOAD_TIMEOUT
            while len(tally.acknowledged) < KILL_AFTER and time.monotonic() < deadline:
                if any(f.done() for f in futures):
                    break  # a client ended early: kill now, while the others still send
                time.sleep(0.005)
            clients_sending = sum(not f.done() for f in futures)
            first.kill()
            killed_at = len(tally.acknowledged)
            for future in futures:
                future.result(timeout=15)  # re-raises a client's own bug
    finally:
        stop.set()
        first.stop()
    assert not tally.other, f"unexpected answers: {tally.other[:5]}"
    assert killed_at >= 50, f"only {killed_at} events acknowledged before the kill"
    assert clients_sending == CLIENTS, f"only {clients_sending} clients still sending at the kill"

    second = start_service(env, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=second.url, timeout=10.0) as http:
            answers = {ident: http.get(f"/events/{ident}") for ident in sorted(tally.acknowledged)}
            in_flight_stored = sum(
                http.get(f"/events/{ident}").status_code == 200 for ident in tally.in_flight
            )
        restart_errors = second.error_lines()
    finally:
        second.stop()
    assert not restart_errors, f"the restarted service logged errors: {restart_errors[:5]}"
    missing = [(i, r.status_code) for i, r in answers.items() if r.status_code != 200]
    wrong = [i for i, r in answers.items() if r.status_code == 200 and r.json()["id"] != i]

    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            stored = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    finally:
        engine.dispose()

    print(
        f"\n{len(tally.acknowledged)} acknowledged (kill at {killed_at}), "
        f"{len(tally.in_flight)} in flight at the kill ({in_flight_stored} of them stored), "
        f"{tally.refused} refused after it; {stored} events in the store"
    )
    assert not missing, (
        f"{len(missing)} of {len(tally.acknowledged)} events answered 202 are gone after "
        f"SIGKILL and restart, e.g. {missing[:5]}"
    )
    assert not wrong, f"GET /events/{{id}} answered another event for {wrong[:5]}"
    assert stored >= len(tally.acknowledged)
    assert stored <= len(tally.acknowledged) + len(tally.in_flight), (
        "the store holds events no client sent"
    )
