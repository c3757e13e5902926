"""A poll per tracked branch catches pushes no webhook reported (Flux and Argo CD do the same for
deployments): every `poll_seconds` of its pipelines' source, `git ls-remote` says where each
tracked branch points; a head that moved becomes an Event from source `poll`, which takes the
same path as a webhook's push. It never makes a second run of a head a webhook already ran: the
decision asks git and the branch's current version like any push ("already built at X").

    poller = BranchPoller(git, inbox, rules, current, wakeup)
    poller.poll_due(now) -> int          events stored (one ls-remote per repository due)
    poller.start() / poller.stop()       a thread inside `serve` and `worker`

Tracked branches: each pipeline's `source.branch`, and the literal (glob-free) `branches` of its
code triggers, in its `source.repository`. Until a branch has a current version, the first poll
only notes the head it found (a new install does not train at once); afterwards any moved head
that differs from the current version is an event. The event id is derived from (repository,
branch, head), so replicas polling the same branch store it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trigger_service.events import CodeSubject, Event, EventKind, make_event_id, utcnow
from trigger_service.inbox import Inbox
from trigger_service.rules import CodeTrigger, Rules
from trigger_service.versions.git import GitCache
from trigger_service.versions.heads import Current

log = logging.getLogger(__name__)
SOURCE = "poll"
ZERO = "0" * 40
_GLOB = set("*?[")


@dataclass
class Tracked:
    """One (repository, branch) and the pipelines that build from it."""

    repository: str
    branch: str
    interval: float
    pipelines: list[str] = field(default_factory=list)


def tracked_branches(rules: Rules) -> dict[tuple[str, str], Tracked]:
    """Every (repository, branch) a pipeline builds from, with its shortest poll interval."""
    found: dict[tuple[str, str], Tracked] = {}
    for pipeline in rules.pipelines:
        interval = pipeline.source.poll_seconds
        if interval <= 0:
            continue
        branches = {pipeline.source.branch}
        for trigger in rules.triggers:
            if isinstance(trigger, CodeTrigger) and trigger.pipeline == pipeline.name:
                branches.update(b for b in trigger.branches or () if not _GLOB & set(b))
        for branch in sorted(branches):
            key = (pipeline.source.repository, branch)
            entry = found.setdefault(key, Tracked(key[0], branch, interval))
            entry.interval = min(entry.interval, interval)
            entry.pipelines.append(pipeline.name)
    return found


def repository_name(url: str) -> str:
    """owner/name from a clone URL (what forges call the repository), else the URL's path."""
    path = urlsplit(url).path if "://" in url else url
    return path.strip("/").removesuffix(".git") or url


class BranchPoller:
    def __init__(
        self,
        git: GitCache,
        inbox: Inbox,
        rules: Callable[[], Rules],
        current: Current,
        wakeup: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.git = git
        self.inbox = inbox
        self.rules = rules
        self.current = current
        self.wakeup = wakeup
        self.clock = clock
        self.seen: dict[tuple[str, str], str] = {}  # the head each branch had at its last poll
        self.next_at: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_due(self, now: float | None = None) -> int:
        """Poll every tracked branch whose interval has passed; the number of events stored."""
        now = self.clock() if now is None else now
        due: dict[str, list[Tracked]] = {}
        for key, entry in tracked_branches(self.rules()).items():
            if self.next_at.get(key, 0.0) <= now:
                self.next_at[key] = now + entry.interval
                due.setdefault(entry.repository, []).append(entry)
        stored = 0
        for repository, entries in due.items():
            try:
                heads = self.git.remote_heads(repository, [e.branch for e in entries])
            except Exception as exc:  # a poll must never stop polling; the next one retries
                log.warning("poll of %s failed: %s", repository, exc)
                continue
            events = [
                event
                for entry in entries
                if (event := self._moved(entry, heads.get(entry.branch))) is not None
            ]
            if not events:
                continue
            try:
                stored += sum(1 for result in self.inbox.store(events) if result.new)
            except Exception as exc:  # the store is down: forget these heads, poll again soon
                log.warning("poll of %s could not store its events: %s", repository, exc)
                for entry in entries:
                    self.seen.pop((entry.repository, entry.branch), None)
                    self.next_at.pop((entry.repository, entry.branch), None)
        if stored:
            self.wakeup()
        return stored

    def _moved(self, entry: Tracked, head: str | None) -> Event | None:
        key = (entry.repository, entry.branch)
        if head is None:
            return None  # deleted, or not pushed yet: nothing to build
        before = self.seen.get(key)
        self.seen[key] = head
        if head == before:
            return None
        currents = [self.current(name, entry.branch) for name in entry.pipelines]
        if all(c == head for c in currents):
            return None  # already built (a webhook was faster)
        if before is None and all(c is None for c in currents):
            log.info("poll: %s %s starts at %s", entry.repository, entry.branch, head[:12])
            return None
        subject = CodeSubject(
            repository=entry.repository,
            repository_name=repository_name(entry.repository),
            ref=f"refs/heads/{entry.branch}",
            branch=entry.branch,
            tag=None,
            before=before or next((c for c in currents if c), ZERO),
            after=head,
            changed_paths=None,  # git says, when it is decided
        )
        delivery = f"{entry.branch}@{head}"
        log.info("poll: %s %s moved to %s", entry.repository, entry.branch, head[:12])
        return Event(
            id=make_event_id(SOURCE, entry.repository, delivery),
            kind=EventKind.CODE,
            source=SOURCE,
            subject=subject,
            received_at=utcnow(),
            delivery_id=delivery,
        )

    # --- background thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="branch-poll", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_due()
                intervals = [t.interval for t in tracked_branches(self.rules()).values()]
            except Exception:
                log.exception("branch poll failed")
                intervals = []
            # Wake often enough for the shortest interval, at most once a second.
            self._stop.wait(max(0.05, min([1.0, *(i / 4 for i in intervals)])))
