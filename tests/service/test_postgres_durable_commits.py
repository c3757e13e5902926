"""A 2xx on PostgreSQL means flushed, whatever the server's `synchronous_commit` says.

Measured: with `synchronous_commit = off` (a common tuning; the test cluster has it too) the
events acknowledged in the last fraction of a second before `pg_ctl stop -m immediate` were
gone after PostgreSQL restarted (2 and 3 of 41 in two runs). The engine's sessions now ask for
the flush, and keep a stronger setting they are given.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from tests.support.postgres import (
    PostgresCluster,
    cluster_or_skip,
)
from trigger_service.database import make_engine

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    with cluster_or_skip() as cluster:
        yield cluster


def session_setting(url: str) -> str:
    engine = make_engine(url, timeout=5)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW synchronous_commit")).scalar_one())
    finally:
        engine.dispose()


def test_sessions_flush_commits_even_when_the_server_says_off(postgres: PostgresCluster) -> None:
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        assert admin.execute("SHOW synchronous_commit").fetchone() == ("off",)
    assert session_setting(postgres.url) == "on"


def test_a_stronger_setting_is_kept(postgres: PostgresCluster) -> None:
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{postgres.dbname}" SET synchronous_commit = remote_apply')
    assert session_setting(postgres.url) == "remote_apply"
