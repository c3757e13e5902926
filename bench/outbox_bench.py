"""Cost of commit statuses on the decision path, and the outbox sender's delivery rate.

    python bench/outbox_bench.py [N]   (default 500)

N signed-push events that run nothing (docs-only pushes) are decided with statuses off and on
(a GitHub token, the API pointed at the HTTP double of tests/support/forges.py on loopback);
then the sender delivers the statuses (one per push; the all-zero commit of event 0 is a branch
deletion and gets none).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.forges import ForgeDouble
from tests.support.repo import GitRepo, rules_text
from trigger_service.events import CodeSubject, Event, EventKind
from trigger_service.service import Services
from trigger_service.settings import Settings

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def run(with_token: bool) -> None:
    tmp = Path(tempfile.mkdtemp())
    repo = GitRepo(tmp / "repo")
    repo.commit({"pipeline.yaml": "#\n"}, "init")
    (tmp / "rules.yaml").write_text(rules_text(repo.url))
    forge = ForgeDouble("github", token="t").up()
    extra = {"github_api_url": forge.api_url, "github_api_token": "t"} if with_token else {}
    s = Services.build(
        Settings(
            database_url=f"sqlite:///{tmp / 't.db'}",
            rules_path=tmp / "rules.yaml",
            backend="shadow",
            git_cache_dir=tmp / "gc",
            models_root=tmp / "m",
            **extra,
        )
    )
    now = datetime.now(UTC)
    events = []
    for i in range(N):
        sha = f"{i:040x}"
        forge.add_commit("team/songs", sha)
        subj = CodeSubject(
            repo.url,
            "team/songs",
            "refs/heads/main",
            "main",
            None,
            "0" * 40,
            sha,
            changed_paths=("docs/x.md",),
        )
        events.append(Event(f"github-{i}", EventKind.CODE, "github", subj, now))
    s.inbox.store(events)
    t0 = time.perf_counter()
    s.worker.run_until_idle()
    t1 = time.perf_counter()
    each = (t1 - t0) / N * 1000
    line = f"token={with_token}: decide {N} no-run pushes: {t1 - t0:.2f} s ({each:.2f} ms each)"
    if s.outbox:
        t2 = time.perf_counter()
        sent = s.outbox.send_until_idle(max_passes=10000)
        t3 = time.perf_counter()
        rate = sent / (t3 - t2)
        line += f"; deliver {sent} statuses: {t3 - t2:.2f} s ({rate:.0f}/s)"
        line += f", posted {len(forge.posted)}"
    print(line)
    forge.down()
    s.engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)


run(False)
run(True)
