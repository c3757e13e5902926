"""A throwaway PostgreSQL cluster for end-to-end tests (Debian's `postgresql` package).

    bindir = find_postgres_bin()          # None: the binaries are not installed
    with postgres_cluster(bindir) as pg:  # initdb, start on 127.0.0.1:<free port>, create a db
        engine = create_engine(pg.url)    # postgresql+psycopg://postgres@127.0.0.1:PORT/trigger
    # stopped (pg_ctl stop -m immediate) and its files removed when the block ends

The cluster runs with trust authentication, listens on 127.0.0.1 only, keeps its unix socket in
its own temporary folder and has fsync off (nothing here is about surviving power loss). As root,
initdb/pg_ctl refuse to run, so they run as the unprivileged `postgres` user (which the Debian
package creates) via runuser, with the data folder in a fresh /tmp directory owned by that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.server import free_port

SUPERUSER = "postgres"


def find_postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb and pg_ctl, else PATH's."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


@dataclass(frozen=True)
class PostgresCluster:
    bindir: Path
    root: Path  # data/, socket/, server.log live here
    port: int
    dbname: str
    user: str = SUPERUSER
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """SQLAlchemy URL over TCP loopback (what TRIGGER_DATABASE_URL takes)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def socket_url(self) -> str:
        """The same database over the unix socket in the cluster's own folder."""
        return (
            f"postgresql+psycopg://{self.user}@/{self.dbname}"
            f"?host={self.root / 'socket'}&port={self.port}"
        )

    @property
    def conninfo(self) -> str:
        """libpq connection string, for psycopg.connect()."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"


def _as_owner(owner: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


def _run(argv: list[str], what: str, timeout: float = 120.0) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({done.returncode}): {' '.join(argv)}\n{done.stdout}\n{done.stderr}"
        )


@contextlib.contextmanager
def postgres_cluster(
    bindir: Path, dbname: str = "trigger", start_timeout: int = 30
) -> Iterator[PostgresCluster]:
    """initdb + pg_ctl start on a free loopback port + CREATE DATABASE; stopped afterwards."""
    owner: str | None = None
    root = Path(tempfile.mkdtemp(prefix="pg-e2e-"))
    if os.geteuid() == 0:
        owner = SUPERUSER
        try:
            account = pwd.getpwnam(owner)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(
                f"running as root and there is no '{owner}' user to run PostgreSQL as"
            ) from None
        os.chown(root, account.pw_uid, account.pw_gid)
    data, sockets = root / "data", root / "socket"
    port = free_port()
    cluster = PostgresCluster(bindir, root, port, dbname)
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        for folder in (data, sockets):
            _run(_as_owner(owner, ["mkdir", "-m", "700", str(folder)]), "mkdir")
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
        _run(_as_owner(owner, [*initdb, "--encoding=UTF8", "--no-locale", "--no-sync"]), "initdb")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{sockets}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with (data / "postgresql.conf").open("a") as out:  # appending keeps its owner
            out.write(conf)
        start = [*pg_ctl, "-l", str(cluster.log_path), "-w", "-t", str(start_timeout), "start"]
        _run(_as_owner(owner, start), "pg_ctl start", timeout=start_timeout + 10)
        started = True
        admin = f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        with psycopg.connect(cluster.conninfo, connect_timeout=10) as conn:
            conn.execute("SELECT 1").fetchone()
        yield cluster
    finally:
        if started:
            with contextlib.suppress(Exception):
                stop = [*pg_ctl, "-m", "immediate", "-w", "stop"]
                _run(_as_owner(owner, stop), "pg_ctl stop")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def cluster_or_skip() -> Iterator[PostgresCluster]:
    """`postgres_cluster` on the installed binaries; the calling test skips without them."""
    import pytest

    bindir = find_postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    with postgres_cluster(bindir) as cluster:
        yield cluster
