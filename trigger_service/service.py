"""Wiring: builds every stage from the settings, once, at the entry point."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from trigger_service.database import create_schema, make_engine
from trigger_service.inbox import Inbox
from trigger_service.metrics import RULES_RELOAD_FAILURES, RULES_RELOAD_OK
from trigger_service.model_registry import registry_channel
from trigger_service.modelserver import make_rollout
from trigger_service.outbox.sender import Channel, OutboxSender
from trigger_service.reconcile import Reconciler
from trigger_service.reconcile.listing import make_client as make_s3_client
from trigger_service.retrying import Backoff
from trigger_service.rules import Rules, RulesError, load_rules
from trigger_service.rules.status import RulesStatus
from trigger_service.settings import SECRET_FIELDS, Settings
from trigger_service.statuses import status_channels
from trigger_service.store_health import StoreHealth
from trigger_service.submit.base import Backend
from trigger_service.tracking.models import ModelLinker
from trigger_service.tracking.poller import RunPoller
from trigger_service.tracking.registrations import Registrar
from trigger_service.tracking.reports import StatusReporter
from trigger_service.versions.compiling import make_compiler
from trigger_service.versions.git import GitCache
from trigger_service.versions.heads import BranchHeads
from trigger_service.versions.poll import BranchPoller
from trigger_service.versions.registry import VersionRegistry
from trigger_service.worker.decisions import follow_run
from trigger_service.worker.loop import Worker
from trigger_service.worker.submitting import Submitter

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class RulesHolder:
    """The rules file, validated; re-read when it changes (a bad edit keeps the last good one).

    A refused reload is logged, counted (trigger_rules_reload_failures_total), and shown by
    /readyz as `reload_error`; whatever went wrong, the previous rules keep working.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rules = load_rules(path)  # a bad (or missing) file refuses the start, naming it
        self._mtime: float | None = path.stat().st_mtime
        self.reload_error: str | None = None
        self._reloader: threading.Thread | None = None
        RULES_RELOAD_OK.set(1)
        self.status = RulesStatus(path)
        self.status.loaded(time.time())

    def __call__(self) -> Rules:
        try:
            mtime: float | None = self.path.stat().st_mtime
        except OSError as exc:
            # Deleted (or its folder gone): say so, and read whatever file appears next.
            mtime = None
            missing = f"{self.path}: cannot read: {exc.strerror or exc}"
        if mtime != self._mtime:
            if _on_event_loop():
                # Parsing a large file takes seconds that every request would wait: a thread
                # reloads, and this caller gets the rules in force until it is done.
                if self._reloader is None or not self._reloader.is_alive():
                    self._reloader = threading.Thread(target=self, name="rules-reload", daemon=True)
                    self._reloader.start()
                return self._rules
            with self._lock:
                if mtime == self._mtime:  # another caller reloaded it while this one waited
                    return self._rules
                self._mtime = mtime
                try:
                    if mtime is None:
                        raise RulesError([missing])
                    self._rules = load_rules(self.path)
                except Exception as exc:  # no edit of a file may stop the worker
                    message = str(exc) if isinstance(exc, RulesError) else repr(exc)
                    self.reload_error = message[:2000]
                    RULES_RELOAD_FAILURES.inc()
                    RULES_RELOAD_OK.set(0)
                    self.status.refused(time.time(), message[:2000])
                    log.error("rules file change refused, keeping the previous rules: %s", message)
                else:
                    self.reload_error = None
                    RULES_RELOAD_OK.set(1)
                    self.status.loaded(time.time())
                    log.info("rules file reloaded: %s", self.path)
        return self._rules


def build_outbox(
    settings: Settings, engine: Engine, worker_id: str, clock: Clock
) -> tuple[OutboxSender | None, StatusReporter | None, Registrar | None]:
    """The outbox's writers (tracking) and its sender (worker), for the channels configured:
    a forge with an API token gets commit statuses, TRIGGER_MODEL_REGISTRY a registry."""
    channels: dict[str, Channel] = {}
    forges = status_channels(settings)
    channels.update(forges)
    registry = registry_channel(settings)
    reports = registrar = None
    if forges:
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        reports = StatusReporter(forges, base, public=settings.public_url is not None)
    if registry is not None:
        channels[registry.name] = registry
        registrar = Registrar(
            registry.name,
            models_uri=settings.models_uri,
            alias=settings.model_alias,
            models_root=settings.models_root,
        )
    if not channels:
        return None, None, None
    sender = OutboxSender(
        engine,
        channels,
        worker_id=worker_id,
        lease_seconds=settings.claim_lease_seconds,
        backoff=Backoff.from_settings(settings),
        poll_seconds=settings.outbox_poll_seconds,
        clock=clock,
    )
    return sender, reports, registrar


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def make_backend(settings: Settings) -> Backend:
    if settings.backend == "kfp":
        from trigger_service.submit.kfp_remote import KfpBackend

        return KfpBackend.from_settings(settings)
    if settings.backend == "shadow":
        from trigger_service.submit.shadow import ShadowBackend

        return ShadowBackend()
    from trigger_service.submit.local import LocalBackend

    env = {}
    if settings.s3_endpoint:
        env["S3_ENDPOINT"] = settings.s3_endpoint
        env["S3_SECURE"] = "true" if settings.s3_secure else "false"
    if settings.s3_access_key and settings.s3_secret_key:
        env["AWS_ACCESS_KEY_ID"] = settings.s3_access_key.get_secret_value()
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_key.get_secret_value()
    return LocalBackend(
        runs_dir=settings.runs_dir,
        models_root=settings.models_root,
        data_dir=settings.data_dir,
        env=env,
        timeout=settings.local_run_timeout_seconds,
    )


def make_reconciler(
    settings: Settings,
    engine: Engine,
    rules: Callable[[], Rules],
    wakeup: Callable[[], None],
    clock: Clock = time.time,
) -> Reconciler:
    """The bucket reconcile loop, with the TRIGGER_S3_* endpoint and keys (without them it
    lists nothing and says so once per trigger: an anonymous listing would only fail)."""
    client = None
    if settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key:
        client = make_s3_client(
            settings.s3_endpoint,
            settings.s3_access_key.get_secret_value(),
            settings.s3_secret_key.get_secret_value(),
            settings.s3_secure,
        )
    return Reconciler(
        engine,
        rules,
        client,
        on_new_events=wakeup,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        clock=clock,
    )


@dataclass
class Services:
    settings: Settings
    engine: Engine
    inbox: Inbox
    rules: RulesHolder
    backend: Backend
    versions: VersionRegistry
    models: ModelLinker
    worker: Worker
    clock: Clock = field(default=time.time)
    reconciler: Reconciler | None = None  # runs with the worker (its companion)
    health: StoreHealth | None = None
    outbox: OutboxSender | None = None
    registrar: Registrar | None = None

    @classmethod
    def build(
        cls, settings: Settings, backend: Backend | None = None, clock: Clock = time.time
    ) -> Services:
        engine = make_engine(settings.database_url, settings.store_timeout_seconds)
        create_schema(engine)
        rules = RulesHolder(settings.rules_path)
        backend = backend or make_backend(settings)
        git_token = settings.git_token.get_secret_value() if settings.git_token else None
        git = GitCache(settings.git_cache_dir, git_token)
        versions = VersionRegistry(
            engine=engine,
            backend=backend,
            git=git,
            packages_dir=settings.git_cache_dir / "packages",
            compile_timeout=settings.compile_timeout_seconds,
            clock=clock,
            compiler=make_compiler(settings),
        )
        # The models root is read wherever it is mounted (the local backend's folder, or the
        # models PVC mounted read-only on a cluster) to link runs to what they published.
        models = ModelLinker(engine, settings.models_root, make_rollout(settings))
        worker_id = f"{socket.gethostname()}-{os.getpid()}"
        health = StoreHealth(engine, worker_id, settings.store_probe_seconds)
        inbox = Inbox(engine, clock, timeout=settings.store_timeout_seconds, health=health)
        outbox, reports, registrar = build_outbox(settings, engine, worker_id, clock)
        submitter = Submitter(
            engine=engine,
            backend=backend,
            versions=versions,
            rules=rules,
            worker_id=worker_id,
            # The lease is what the setting says: a long submission (a compile) extends its own.
            lease_seconds=settings.claim_lease_seconds,
            backoff=Backoff.from_settings(settings),
            max_attempts=settings.max_attempts,
            clock=clock,
            reports=reports,
        )
        # Tracking polls the runs; a run's final state moves its decision (the worker's).
        runs = RunPoller(
            engine=engine,
            backend=backend,
            models=models,
            clock=clock,
            follow=follow_run,
            reports=reports,
            registrar=registrar,
        )
        worker = Worker(
            engine=engine,
            inbox=inbox,
            submitter=submitter,
            rules=rules,
            worker_id=worker_id,
            batch=settings.worker_batch,
            lease_seconds=settings.claim_lease_seconds,
            poll_seconds=settings.worker_poll_seconds,
            run_poll_seconds=settings.kfp_poll_seconds if settings.backend == "kfp" else 1.0,
            clock=clock,
            heads=BranchHeads(git, versions.current),
            reports=reports,
            outbox=outbox,
            runs=runs,
        )
        # The poll stores events through the inbox and wakes the worker, like a webhook.
        worker.poller = BranchPoller(git, inbox, rules, versions.current, worker.wakeup)
        reconciler = make_reconciler(settings, engine, rules, worker.wakeup, clock)
        worker.companions.append(reconciler)
        return cls(
            settings,
            engine,
            inbox,
            rules,
            backend,
            versions,
            models,
            worker,
            clock,
            reconciler=reconciler,
            health=health,
            outbox=outbox,
            registrar=registrar,
        )

    def worker_wakeup(self) -> None:
        self.worker.wakeup()

    def readiness(self, worker_expected: bool) -> tuple[bool, dict[str, str]]:
        """(ready, checks): the store takes writes, the inbox writer and the worker run."""
        checks: dict[str, str] = {}
        if self.health is not None:
            ok, detail = self.health.status(stale_after=3 * self.health.interval + 1.0)
            checks["store"] = detail
        else:
            ok = True
        if not self.inbox.writer_alive:
            ok, checks["inbox_writer"] = False, "the inbox writer thread died"
        if worker_expected:
            if self.worker.failure is not None:
                ok, checks["worker"] = False, self.worker.failure
            else:
                checks["worker"] = "running"
        if self.rules.reload_error is not None:  # visible, but the previous rules still work
            checks["rules"] = "reload refused, previous rules in use: " + self.rules.reload_error
        return ok, checks

    def warn_about_open_routes(self) -> None:
        for route, field_name in SECRET_FIELDS.items():
            if getattr(self.settings, field_name) is None:
                if self.settings.allow_unauthenticated:
                    log.warning("route %s has no secret and ACCEPTS UNSIGNED requests", route)
                else:
                    log.warning(
                        "route %s has no secret configured: it refuses every request", route
                    )
