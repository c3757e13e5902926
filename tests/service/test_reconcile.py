"""The bucket reconcile loop against moto's S3 server on loopback: objects whose notification was
lost become one event and one run, their late notification is a duplicate, a baseline runs
nothing, versions are objects, and a failing listing recovers without stopping the worker."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from minio.commonconfig import ENABLED
from minio.versioningconfig import VersioningConfig
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from urllib3.exceptions import ProtocolError

from tests.service.conftest import Build, FakeClock
from tests.sources.helpers import payload
from tests.support.backends import ScriptedBackend
from tests.support.postgres import find_postgres_bin, postgres_cluster
from tests.support.repo import GitRepo, rules_text
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, moto_server
from trigger_service.api import create_app
from trigger_service.database import decisions, events, reconcile_state, seen_objects
from trigger_service.events import DataSubject, Event, EventKind, ManualSubject
from trigger_service.metrics import RECONCILE_ERRORS, RECONCILE_MISSING
from trigger_service.reconcile import Reconciler, seen
from trigger_service.service import Services
from trigger_service.settings import Settings

pytestmark = pytest.mark.slow  # every test here lists buckets on moto's S3 server
INTERVAL = 60


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as where:
        yield where


@pytest.fixture
def s3(endpoint: str) -> Minio:
    return Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)


@pytest.fixture
def bucket(s3: Minio) -> str:
    name = f"data-{uuid.uuid4().hex[:12]}"
    s3.make_bucket(name)
    return name


def reconcile_rules(
    repo: GitRepo, bucket: str, baseline: str = "skip", debounce: float = 30, interval: float = 60
) -> str:
    return (
        rules_text(repo.url, debounce=debounce)
        .replace("    bucket: datasets\n", f"    bucket: {bucket}\n")
        .replace(
            "    prefix: songs/\n",
            f"    prefix: songs/\n    reconcile_seconds: {interval}\n"
            f"    reconcile_baseline: {baseline}\n",
        )
    )


def with_s3(build: Build, rules: str, endpoint: str, **overrides: Any) -> Services:
    return build(
        rules,
        s3_endpoint=endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        **overrides,
    )


def reconciler(services: Services) -> Reconciler:
    assert services.reconciler is not None
    return services.reconciler


def put(s3: Minio, bucket: str, key: str, data: bytes = b"a,b\n1,2\n") -> Any:
    return s3.put_object(bucket, key, io.BytesIO(data), len(data))


def stored(services: Services) -> list[Event]:
    with services.engine.connect() as conn:
        ids = conn.execute(select(events.c.id).order_by(events.c.received_at)).scalars().all()
    found = [services.inbox.get_event(i) for i in ids]
    return [e for e in found if e is not None]


def run_decisions(services: Services) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(select(decisions).where(decisions.c.outcome == "run")).all())


def count(services: Services, table: Any) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def notification(bucket: str, key: str, etag: str, version_id: str | None = None) -> dict:
    """A MinIO notification of the upload, as it would have arrived (with its own sequencer)."""
    data = payload("storage/minio-put.json")
    record = data["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"].update(key=quote_plus(key), eTag=etag, sequencer="17FFFFFFFFFFFFFF")
    if version_id is not None:
        record["s3"]["object"]["versionId"] = version_id
    return data


def notify(services: Services, data: dict) -> Any:
    with TestClient(create_app(services, start_worker=False)) as client:
        return client.post(
            "/webhooks/storage", json=data, headers={"Authorization": "Bearer storage-token"}
        )


def missing_count(trigger: str = "new-data") -> float:
    return RECONCILE_MISSING.labels(trigger)._value.get()


def test_an_unannounced_object_is_one_event_and_one_run_and_its_late_notification_a_duplicate(
    build: Build,
    repo: GitRepo,
    clock: FakeClock,
    backend: ScriptedBackend,
    s3: Minio,
    bucket: str,
    endpoint: str,
) -> None:
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    first = reconciler(services).reconcile_due()
    assert first == 1  # the baseline pass (empty bucket)
    missing_before = missing_count()

    result = put(s3, bucket, "songs/2026-11/new data.csv")  # notifications are off: none sent
    put(s3, bucket, "other/not-under-the-prefix.csv")
    clock.advance(INTERVAL - 1)
    assert reconciler(services).reconcile_due() == 0, "not due before the interval"
    assert stored(services) == []

    clock.advance(1)
    assert reconciler(services).reconcile_due() == 1
    [event] = stored(services)
    assert (event.kind, event.source) == (EventKind.DATA, "reconcile")
    assert event.subject == DataSubject(
        bucket=bucket,
        key="songs/2026-11/new data.csv",
        event_name="s3:ObjectCreated:Put",
        size=8,
        etag=result.etag,
        version_id=None,
    )
    assert missing_count() == missing_before + 1

    # Through the same rules and policy as a notification: debounced, then one run.
    services.worker.run_until_idle()
    clock.advance(31)
    services.worker.run_until_idle()
    [decision] = run_decisions(services)
    assert (decision.trigger, decision.state, decision.event_count) == ("new-data", "submitted", 1)
    assert backend.submit_calls == 1
    [request] = backend.runs.values()
    assert request.params["data_uri"] == f"s3://{bucket}/songs/2026-11/new data.csv"

    # The notification arrives late, with its own sequencer and request id: the same event.
    answer = notify(services, notification(bucket, "songs/2026-11/new data.csv", result.etag))
    assert answer.status_code == 200, answer.text
    assert answer.json()["duplicates"] == [event.id]
    clock.advance(INTERVAL + 31)
    assert reconciler(services).reconcile_due() == 1
    services.worker.run_until_idle()
    assert backend.submit_calls == 1
    assert len(stored(services)) == 1


def test_a_notified_object_is_not_missing_and_not_a_second_event(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    reconciler(services).reconcile_due()
    result = put(s3, bucket, "songs/notified.csv")
    answer = notify(services, notification(bucket, "songs/notified.csv", result.etag))
    assert answer.status_code == 202, answer.text
    before = missing_count()
    clock.advance(INTERVAL)
    assert reconciler(services).reconcile_due() == 1
    assert [e.source for e in stored(services)] == ["storage"]
    assert missing_count() == before
    assert count(services, seen_objects) == 1  # accounted for: the next pass skips it


def _put_many(s3: Minio, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: put(s3, bucket, key, key.encode()), keys))


def test_a_baseline_of_1000_existing_objects_runs_nothing(
    build: Build,
    repo: GitRepo,
    clock: FakeClock,
    backend: ScriptedBackend,
    s3: Minio,
    bucket: str,
    endpoint: str,
) -> None:
    _put_many(s3, bucket, [f"songs/part-{i:05d}.csv" for i in range(1000)])
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    reconciler(services).chunk = 300  # several chunks and pages

    [trigger] = reconciler(services).triggers()
    result = reconciler(services).reconcile(trigger)
    assert result is not None
    assert (result.listed, result.unseen, result.new_events, result.baseline) == (
        1000,
        1000,
        0,
        True,
    )
    assert count(services, seen_objects) == 1000
    assert stored(services) == []

    # The next pass: all seen, still nothing; one new object is one event.
    put(s3, bucket, "songs/part-new.csv")
    clock.advance(INTERVAL)
    result = reconciler(services).reconcile(trigger)
    assert result is not None
    assert (result.listed, result.unseen, result.new_events, result.baseline) == (1001, 1, 1, False)
    services.worker.run_until_idle()
    clock.advance(31)
    services.worker.run_until_idle()
    [decision] = run_decisions(services)
    assert decision.event_count == 1
    assert backend.submit_calls == 1


def test_baseline_run_makes_existing_objects_one_debounced_run(
    build: Build,
    repo: GitRepo,
    clock: FakeClock,
    backend: ScriptedBackend,
    s3: Minio,
    bucket: str,
    endpoint: str,
) -> None:
    _put_many(s3, bucket, [f"songs/part-{i}.csv" for i in range(5)])
    services = with_s3(build, reconcile_rules(repo, bucket, baseline="run"), endpoint)
    assert reconciler(services).reconcile_due() == 1
    assert sorted(e.subject.key for e in stored(services)) == [  # type: ignore[union-attr]
        f"songs/part-{i}.csv" for i in range(5)
    ]
    services.worker.run_until_idle()
    clock.advance(31)
    services.worker.run_until_idle()
    [decision] = run_decisions(services)
    assert decision.event_count == 5
    assert backend.submit_calls == 1


def test_an_endpoint_given_as_a_url_like_the_pipelines_s3_endpoint_lists(
    build: Build, repo: GitRepo, s3: Minio, bucket: str, endpoint: str
) -> None:
    # docs/deployment.md's pipeline-s3 Secret writes S3_ENDPOINT=http://...: the same value in
    # TRIGGER_S3_ENDPOINT used to stop the service ("path in endpoint is not allowed").
    put(s3, bucket, "songs/a.csv")
    services = with_s3(build, reconcile_rules(repo, bucket, baseline="run"), f"http://{endpoint}/")
    assert reconciler(services).reconcile_due() == 1
    assert [e.subject.key for e in stored(services)] == ["songs/a.csv"]  # type: ignore[union-attr]


def test_versioned_bucket_two_versions_are_two_events_and_a_removed_object_is_never_new(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    s3.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    put(s3, bucket, "songs/old.csv")
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    assert reconciler(services).reconcile_due() == 1  # baseline: old.csv

    one = put(s3, bucket, "songs/data.csv", b"first")
    two = put(s3, bucket, "songs/data.csv", b"second")
    gone = put(s3, bucket, "songs/gone.csv", b"removed before anyone listed it")
    s3.remove_object(bucket, "songs/gone.csv")  # a delete marker on top
    assert one.version_id and two.version_id and one.version_id != two.version_id

    clock.advance(INTERVAL)
    assert reconciler(services).reconcile_due() == 1
    found = stored(services)
    assert sorted((e.subject.key, e.subject.version_id) for e in found) == sorted(  # type: ignore[union-attr]
        [("songs/data.csv", one.version_id), ("songs/data.csv", two.version_id)]
    )
    assert gone.version_id not in {e.subject.version_id for e in found}  # type: ignore[union-attr]

    # Each version's late notification (it carries the version id) is its own duplicate.
    for result in (one, two):
        data = notification(bucket, "songs/data.csv", result.etag, result.version_id)
        answer = notify(services, data)
        assert answer.status_code == 200 and answer.json()["duplicate"] is True, answer.text
    # The removed object's versions were accounted for: undoing the delete marker later does
    # not make them new.
    markers = [
        o.version_id
        for o in s3.list_objects(bucket, prefix="songs/gone.csv", include_version=True)
        if o.is_delete_marker
    ]
    s3.remove_object(bucket, "songs/gone.csv", version_id=markers[0])
    clock.advance(INTERVAL)
    assert reconciler(services).reconcile_due() == 1
    assert len(stored(services)) == 2


def test_the_listing_failing_retries_with_backoff_and_recovers_without_stopping_the_worker(
    build: Build, repo: GitRepo, clock: FakeClock, backend: ScriptedBackend, tmp_path: Path
) -> None:
    from tests.support.server import free_port

    port = free_port()
    bucket = "flaky"
    with moto_server(port=port) as where:
        s3 = Minio(where, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
        s3.make_bucket(bucket)
        services = with_s3(build, reconcile_rules(repo, bucket), where)
        assert reconciler(services).reconcile_due() == 1  # baseline
    # The server is gone.
    errors_before = RECONCILE_ERRORS.labels("new-data")._value.get()
    clock.advance(INTERVAL)
    started = time.monotonic()
    assert reconciler(services).reconcile_due() == 0
    assert time.monotonic() - started < 10, "a refused connection fails fast"
    assert RECONCILE_ERRORS.labels("new-data")._value.get() == errors_before + 1
    with services.engine.connect() as conn:
        state = conn.execute(select(reconcile_state)).one()
    assert state.failures == 1 and "Error" in state.last_error
    # Backoff: from retry_base_seconds (1 s here), jittered, never the whole interval.
    assert clock.now + 0.5 <= state.next_due <= clock.now + 1.0
    # The worker still decides events while the listing fails.
    services.inbox.store(
        [Event("manual-1", EventKind.MANUAL, "manual", ManualSubject("songs"), clock.datetime())]
    )
    services.worker.run_until_idle()
    assert backend.submit_calls == 1
    clock.advance(1)
    assert reconciler(services).reconcile_due() == 0
    with services.engine.connect() as conn:
        assert conn.execute(select(reconcile_state.c.failures)).scalar_one() == 2

    # It comes back (an empty server: moto keeps nothing), with an object no one announced.
    with moto_server(port=port) as where:
        s3 = Minio(where, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
        s3.make_bucket(bucket)
        put(s3, bucket, "songs/after-the-outage.csv")
        clock.advance(2)
        assert reconciler(services).reconcile_due() == 1
    assert [e.subject.key for e in stored(services) if e.source == "reconcile"] == [  # type: ignore[union-attr]
        "songs/after-the-outage.csv"
    ]
    with services.engine.connect() as conn:
        state = conn.execute(select(reconcile_state)).one()
    assert (state.failures, state.last_error) == (0, None)


def test_in_the_worker_process_a_lost_notification_runs_within_an_interval(
    tmp_path: Path, repo: GitRepo, s3: Minio, bucket: str, endpoint: str
) -> None:
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(reconcile_rules(repo, bucket, debounce=0, interval=1))
    backend = ScriptedBackend()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'trigger.db'}",
        rules_path=rules_path,
        backend="shadow",
        git_cache_dir=tmp_path / "git-cache",
        models_root=tmp_path / "models",
        runs_dir=tmp_path / "runs",
        s3_endpoint=endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
    )
    services = Services.build(settings, backend=backend)
    services.worker.start()  # starts the reconcile loop with it
    try:
        deadline = time.monotonic() + 10
        while count(services, reconcile_state) == 0 or _baselined(services) is None:
            assert time.monotonic() < deadline, "no baseline pass"
            time.sleep(0.05)
        put(s3, bucket, "songs/lost-notification.csv")
        uploaded = time.monotonic()
        while backend.submit_calls == 0:
            assert time.monotonic() - uploaded < 8, "the object did not run"
            time.sleep(0.05)
        # One interval (1 s) plus a listing and a worker tick.
        assert time.monotonic() - uploaded < 3
    finally:
        services.worker.stop()
    assert backend.submit_calls == 1
    [request] = backend.runs.values()
    assert request.params["data_uri"] == f"s3://{bucket}/songs/lost-notification.csv"


def _baselined(services: Services) -> float | None:
    with services.engine.connect() as conn:
        return conn.execute(select(reconcile_state.c.baselined_at)).scalar()


class DroppingClient(Minio):
    """The real client, whose listing connection drops after `fail_after` entries, once."""

    def __init__(self, *args: Any, fail_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_after: int | None = fail_after
        self.starts: list[str | None] = []

    def list_objects(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.starts.append(kwargs.get("start_after"))
        listing = super().list_objects(*args, **kwargs)
        limit, self.fail_after = self.fail_after, None
        for index, obj in enumerate(listing):
            if limit is not None and index == limit:
                raise ProtocolError("Connection broken: IncompleteRead")
            yield obj


def test_a_listing_that_breaks_midway_resumes_after_the_last_committed_key(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    keys = [f"songs/part-{i:04d}.csv" for i in range(1200)]
    _put_many(s3, bucket, keys)
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    client = DroppingClient(
        endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, fail_after=700
    )
    reconciler(services).client = client
    reconciler(services).chunk = 200
    [trigger] = reconciler(services).triggers()

    assert reconciler(services).reconcile(trigger) is None  # broke after 700 entries
    assert count(services, seen_objects) == 600  # three chunks committed
    clock.advance(2)
    result = reconciler(services).reconcile(trigger)
    assert result is not None and result.baseline
    # Resumed after the last key of the committed chunks it was sure of, not from the start.
    assert client.starts == [None, keys[598]]
    assert result.listed == 1200 - 599
    assert count(services, seen_objects) == 1200
    assert stored(services) == []  # still the baseline: nothing runs
    assert _baselined(services) is not None


@pytest.mark.slow
def test_two_replicas_on_postgresql_list_each_interval_once(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    bindir = find_postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
        )
    with postgres_cluster(bindir) as pg:
        rules = reconcile_rules(repo, bucket)
        one = with_s3(build, rules, endpoint, database_url=pg.url)
        two = with_s3(build, rules, endpoint, database_url=pg.url)
        put(s3, bucket, "songs/before.csv")
        assert reconciler(one).reconcile_due() + reconciler(two).reconcile_due() == 1
        put(s3, bucket, "songs/after.csv")
        clock.advance(INTERVAL)
        assert reconciler(two).reconcile_due() + reconciler(one).reconcile_due() == 1
        assert [e.subject.key for e in stored(one)] == ["songs/after.csv"]  # type: ignore[union-attr]
        assert count(one, seen_objects) == 2
        one.engine.dispose()
        two.engine.dispose()


def test_without_s3_endpoint_and_keys_nothing_is_listed_and_it_says_why(
    build: Build, repo: GitRepo, bucket: str, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    services = build(reconcile_rules(repo, bucket), s3_endpoint=endpoint)  # no keys
    with caplog.at_level("WARNING"):
        assert reconciler(services).reconcile_due() == 0
        assert reconciler(services).reconcile_due() == 0
    warnings = [r.getMessage() for r in caplog.records if "not reconciled" in r.getMessage()]
    assert warnings == [
        "data trigger new-data is not reconciled: set TRIGGER_S3_ENDPOINT, TRIGGER_S3_ACCESS_KEY"
        " and TRIGGER_S3_SECRET_KEY"
    ]
    assert count(services, reconcile_state) == 0


class StoppingClient(Minio):
    """The real client; the worker is asked to stop while the listing is under way."""

    def __init__(self, *args: Any, stop: Any, after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop, self.after = stop, after

    def list_objects(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        for index, obj in enumerate(super().list_objects(*args, **kwargs)):
            if index == self.after:
                self.stop.set()
            yield obj


def test_stopping_the_worker_ends_a_pass_after_its_last_chunk_and_leaves_it_due(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    _put_many(s3, bucket, [f"songs/part-{i:04d}.csv" for i in range(1000)])
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    loop = reconciler(services)
    loop.chunk = 200
    loop.client = StoppingClient(
        endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        stop=loop._stop,
        after=250,
    )
    errors_before = RECONCILE_ERRORS.labels("new-data")._value.get()
    [trigger] = loop.triggers()
    assert loop.reconcile(trigger) is None
    assert count(services, seen_objects) == 400  # the chunk under way when asked was committed
    with services.engine.connect() as conn:
        state = conn.execute(select(reconcile_state)).one()
    assert (state.next_due, state.failures, state.baselined_at) == (clock.now, 0, None)
    assert RECONCILE_ERRORS.labels("new-data")._value.get() == errors_before


def test_a_new_triggers_baseline_does_not_hide_an_object_from_an_older_trigger(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    assert reconciler(services).reconcile_due() == 1  # new-data's baseline
    put(s3, bucket, "songs/lost.csv")  # no notification
    # A second trigger over the same objects is added; its first listing (a baseline) runs
    # before new-data's next pass.
    second = reconcile_rules(repo, bucket).replace(
        "  - name: drift\n",
        f"  - name: more-data\n    on: data\n    pipeline: songs\n    bucket: {bucket}\n"
        "  - name: drift\n",
    )
    services.rules.path.write_text(second)
    services.rules._mtime = -1.0  # the file changed: re-read it now (mtime granularity)
    [first, later] = reconciler(services).triggers()
    assert later.name == "more-data"
    result = reconciler(services).reconcile(later)
    assert result is not None and result.baseline and result.new_events == 0
    clock.advance(INTERVAL)
    result = reconciler(services).reconcile(first)
    assert result is not None and result.new_events == 1
    assert [e.subject.key for e in stored(services)] == ["songs/lost.csv"]  # type: ignore[union-attr]


def test_a_trigger_whose_claim_fails_does_not_stop_the_others(
    build: Build,
    repo: GitRepo,
    s3: Minio,
    bucket: str,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = reconcile_rules(repo, bucket).replace(
        "  - name: drift\n",
        f"  - name: more-data\n    on: data\n    pipeline: songs\n    bucket: {bucket}\n"
        "  - name: drift\n",
    )
    services = with_s3(build, rules, endpoint)
    real_claim = seen.claim_pass

    def claim(engine: Any, trigger: str, *args: Any) -> Any:
        if trigger == "new-data":  # as a locked or unreachable store answers
            raise OperationalError("UPDATE reconcile_state", {}, Exception("database is locked"))
        return real_claim(engine, trigger, *args)

    monkeypatch.setattr(seen, "claim_pass", claim)
    errors_before = RECONCILE_ERRORS.labels("new-data")._value.get()
    assert reconciler(services).reconcile_due() == 1  # more-data listed
    assert RECONCILE_ERRORS.labels("new-data")._value.get() == errors_before + 1
    with services.engine.connect() as conn:
        assert conn.execute(select(reconcile_state.c.trigger)).scalars().all() == ["more-data"]


def test_a_lister_killed_mid_pass_leaves_a_lease_that_another_process_takes_after_it(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    assert reconciler(services).reconcile_due() == 1  # baseline
    put(s3, bucket, "songs/during-the-crash.csv")
    clock.advance(INTERVAL)
    # A process claims the pass and dies (kill -9) before listing anything.
    claim = seen.claim_pass(services.engine, "new-data", bucket, "songs/", clock.now, INTERVAL)
    assert claim is not None and claim.baselined
    # A restarted worker (a new process: nothing in memory) finds the pass leased ...
    restarted = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    assert reconciler(restarted).reconcile_due() == 0
    # ... until the lease (one interval) runs out; then it lists, and nothing was lost.
    clock.advance(INTERVAL)
    assert reconciler(restarted).reconcile_due() == 1
    assert [e.subject.key for e in stored(restarted)] == ["songs/during-the-crash.csv"]  # type: ignore[union-attr]


def test_a_failed_pass_does_not_resume_after_another_process_listed_everything(
    build: Build, repo: GitRepo, clock: FakeClock, s3: Minio, bucket: str, endpoint: str
) -> None:
    keys = [f"songs/part-{i:04d}.csv" for i in range(500)]
    _put_many(s3, bucket, keys)
    first = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    client = DroppingClient(
        endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, fail_after=300
    )
    reconciler(first).client = client
    reconciler(first).chunk = 100
    [trigger] = reconciler(first).triggers()
    assert reconciler(first).reconcile(trigger) is None  # broke after 300 entries
    # Another replica takes the retry and lists everything.
    clock.advance(2)
    other = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    done = reconciler(other).reconcile(trigger)
    assert done is not None and done.listed == 500
    # The first one's next pass is a full one, not a resume of its stale failure.
    put(s3, bucket, "songs/part-0000-new.csv")  # sorts before the failed pass's resume key
    clock.advance(INTERVAL)
    result = reconciler(first).reconcile(trigger)
    assert client.starts == [None, None]
    assert result is not None and (result.listed, result.new_events) == (501, 1)


def test_a_changed_prefix_starts_a_new_baseline_and_says_what_it_skips(
    build: Build,
    repo: GitRepo,
    clock: FakeClock,
    s3: Minio,
    bucket: str,
    endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = with_s3(build, reconcile_rules(repo, bucket), endpoint)
    with caplog.at_level("WARNING", logger="trigger_service.reconcile.loop"):
        assert reconciler(services).reconcile_due() == 1  # baseline under songs/
    # A trigger's first listing has nothing earlier: no such warning.
    assert not [r for r in caplog.records if "a new baseline" in r.getMessage()]
    put(s3, bucket, "songs/2026/lost.csv")  # its notification is lost
    # The prefix moves before the next pass: the new listing is a baseline (documented), which
    # skips the lost object; the log says so, naming the old listing and when it was.
    services.rules.path.write_text(
        reconcile_rules(repo, bucket).replace("prefix: songs/\n", "prefix: songs/2026/\n")
    )
    services.rules._mtime = -1.0
    clock.advance(1)
    with caplog.at_level("WARNING", logger="trigger_service.reconcile.loop"):
        assert reconciler(services).reconcile_due() == 1
    assert count(services, events) == 0
    [warning] = [r.getMessage() for r in caplog.records if "a new baseline" in r.getMessage()]
    assert f"now lists {bucket}/songs/2026/ (was {bucket}/songs/, last listed" in warning
