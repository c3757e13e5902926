"""Is the store able to keep a promise right now? Readiness and a metric answer within seconds.

A probe thread commits a tiny write (one row per process in `store_probes`) every
`interval` seconds: that is what a delivery needs, so a full disk, a read-only file, a lock held
by another process or a PostgreSQL that is down all fail it, bounded by the store timeout.
On SQLite the file is also identified by (device, inode) at start: a file deleted or replaced
under the running service still accepts writes through the open handle, and those writes are
lost at the next start, so the inbox checks the identity after each commit and refuses to
acknowledge (503), and readiness fails until a restart opens the real file.

    health = StoreHealth(engine, owner="host-1234", interval=2.0)
    health.start()                 # the probe thread (daemon)
    health.status() -> (ok, detail)
    health.verify_file()           # raises StoreUnavailable when the file is gone or replaced
    health.failed(exc) / health.succeeded()   # what real writes saw, between probes
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, or_

from trigger_service.database import store_probes, write
from trigger_service.metrics import STORE_ERRORS, STORE_HEALTHY
from trigger_service.store_errors import StoreUnavailable, classify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int


def identity_of(path: str) -> FileIdentity | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return FileIdentity(stat.st_dev, stat.st_ino)


def sqlite_file(engine: Engine) -> str | None:
    """The SQLite database file of `engine`, or None (PostgreSQL, or an in-memory database)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return database if database and database != ":memory:" else None


class StoreHealth:
    def __init__(self, engine: Engine, owner: str, interval: float = 2.0) -> None:
        self.engine = engine
        self.owner = owner[:128]
        self.interval = interval
        self.path = sqlite_file(engine)
        self.identity = identity_of(self.path) if self.path else None
        self._lock = threading.Lock()
        self._problem: str | None = None  # the last failure, until a write succeeds again
        self._last_probe = 0.0  # monotonic time of the last finished probe
        self._probing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- what the write paths report
    def verify_file(self) -> None:
        """Raise StoreUnavailable when the SQLite file is not the one opened at start."""
        if self.path is None or self.identity is None:
            return
        now = identity_of(self.path)
        if now == self.identity:
            return
        what = "deleted" if now is None else "replaced"
        reason = f"the database file {self.path} was {what} under the running service"
        self._record(reason)
        raise StoreUnavailable(reason + "; restart the service to open the real file")

    def failed(self, error: BaseException) -> None:
        domain = classify(error)
        if isinstance(domain, StoreUnavailable):
            self._record(str(domain))

    def succeeded(self) -> None:
        if self._problem is not None and self._file_problem() is None:
            with self._lock:
                self._problem = None
            STORE_HEALTHY.set(1)

    def _record(self, reason: str) -> None:
        with self._lock:
            changed = self._problem != reason
            self._problem = reason
        STORE_HEALTHY.set(0)
        if changed:
            STORE_ERRORS.inc()
            log.error("store unhealthy: %s", reason)

    def _file_problem(self) -> str | None:
        try:
            self.verify_file()
        except StoreUnavailable as exc:
            return str(exc)
        return None

    # --- the probe
    def probe(self) -> None:
        """One small committed write; records the outcome (never raises)."""
        with self._probing:
            try:
                now = time.time()
                with write(self.engine) as conn:
                    # This process's row, and rows of processes gone for a day.
                    conn.execute(
                        delete(store_probes).where(
                            or_(store_probes.c.owner == self.owner, store_probes.c.at < now - 86400)
                        )
                    )
                    conn.execute(insert(store_probes).values(owner=self.owner, at=now))
                self.verify_file()
            except Exception as exc:  # every failure is the answer, not a crash of the probe
                domain = classify(exc)
                self._record(str(domain) if domain is not None else f"probe failed: {exc!r}")
            else:
                self.succeeded()
                STORE_HEALTHY.set(1)
            finally:
                self._last_probe = time.monotonic()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="store-probe", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(self.interval)

    def status(self, stale_after: float) -> tuple[bool, str]:
        """(ok, detail). A probe older than `stale_after` seconds (stuck, or never run) is run
        now, in the caller's thread; one that is running past it counts as a failure."""
        if time.monotonic() - self._last_probe > stale_after:
            if self._probing.acquire(timeout=0.05):
                self._probing.release()
                self.probe()
            elif self._problem is None:  # else the failure already recorded says more
                self._record(f"the store has not answered a write for {stale_after:.0f} s")
        problem = self._problem or self._file_problem()
        return (problem is None, problem or "ok")
