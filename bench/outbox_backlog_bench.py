"""A backlog of N queued commit statuses (a forge outage ended): how fast the outbox sender
drains it, and what one claim costs on a full table.

    python bench/outbox_backlog_bench.py [N]   (default 10000)

Rows are written with the tracking stage's enqueue (one commit each, SQLite store), then one
sender delivers them to the GitHub HTTP double of tests/support/forges.py on loopback.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from tests.support.forges import ForgeDouble
from trigger_service.database import create_schema, make_engine, outbox, write
from trigger_service.outbox import store
from trigger_service.outbox.sender import OutboxSender
from trigger_service.retrying import Backoff
from trigger_service.statuses.github import GitHubStatuses

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    engine = make_engine(f"sqlite:///{tmp / 'outbox.db'}")
    create_schema(engine)
    forge = ForgeDouble("github", token="t").up()
    shas = [f"{n:040x}" for n in range(N)]
    for sha in shas:
        forge.add_commit("team/songs", sha)
    started = time.perf_counter()
    with write(engine) as conn:
        for sha in shas:
            where = f"status:github:team/songs:{sha}:retrain/songs"
            payload = {
                "repository": "team/songs",
                "sha": sha,
                "state": "success",
                "context": "retrain/songs",
                "description": "no change under pipeline/",
                "target_url": "http://trigger.example/decisions/d-1",
            }
            item = store.OutboxItem("github", f"{where}:success", where, payload)
            store.enqueue(conn, item, time.time(), supersede=True)
    queued = time.perf_counter() - started
    started = time.perf_counter()
    claimed = store.claim(engine, "probe", 20, 60, time.time())
    claim_ms = (time.perf_counter() - started) * 1000
    for row in claimed:
        store.release(engine, row.id, "probe", time.time(), 0.0)
    channel = GitHubStatuses(forge.api_url, "t")
    sender = OutboxSender(
        engine,
        {"github": channel},
        worker_id="w",
        lease_seconds=120,
        backoff=Backoff(base_seconds=2, max_seconds=300),
        poll_seconds=1,
        clock=time.time,
    )
    started = time.perf_counter()
    sent = sender.send_until_idle(max_passes=N)
    drained = time.perf_counter() - started
    with engine.connect() as conn:
        delivered = conn.execute(
            select(func.count()).where(outbox.c.state == "delivered")
        ).scalar_one()
    print(
        f"queued {N} statuses in {queued:.2f} s; "
        f"one claim of 20 on the full table {claim_ms:.1f} ms"
    )
    print(
        f"sender: {sent} settled, {delivered} delivered, {len(forge.posted)} posted in "
        f"{drained:.1f} s = {sent / drained:.0f} statuses/s"
    )
    channel.close()
    forge.down()
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
