"""The replay window: the same signed body from one source, within the window, is one event.

GitHub's and Gitea's HMAC signatures cover the body but not the delivery id header, and GitLab's
token covers neither: a captured delivery sent again under a new delivery id would otherwise be
a new event and a new run. Within `window` seconds, a body already received on a route answers
as a duplicate of the first one's events (200, `duplicate: true`, `replay: true`), whatever
delivery id it carries.

    guard = ReplayGuard(window=300, clock=time.time)
    earlier = guard.check(route, body, event_ids)   # the first delivery's ids, or None
    guard.forget(route, body)                        # the store failed: not a delivery after all

Per process and in memory (at most `max_entries` bodies, oldest dropped first): a replay after
the window, after a restart, or to another replica is not caught; see docs/security.md.
The manual route is exempt: a person may trigger the same thing twice on purpose (an
Idempotency-Key makes two requests one).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence

EXEMPT = frozenset({"manual"})


class ReplayGuard:
    def __init__(
        self, window: float, clock: Callable[[], float], max_entries: int = 50_000
    ) -> None:
        self.window = window
        self.clock = clock
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, bytes], tuple[float, tuple[str, ...]]] = OrderedDict()

    def check(self, route: str, body: bytes, event_ids: Sequence[str]) -> tuple[str, ...] | None:
        """The event ids of an earlier delivery of `body` on `route` within the window, if
        they differ from `event_ids`; else None, and `body` is remembered with `event_ids`."""
        if self.window <= 0 or route in EXEMPT:
            return None
        now = self.clock()
        self._expire(now)
        key = (route, hashlib.sha256(body).digest())
        earlier = self._seen.get(key)
        if earlier is not None and set(earlier[1]) != set(event_ids):
            return earlier[1]
        if earlier is None:
            self._seen[key] = (now, tuple(event_ids))
            if len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
        return None

    def forget(self, route: str, body: bytes) -> None:
        self._seen.pop((route, hashlib.sha256(body).digest()), None)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, (seen_at, _) = next(iter(self._seen.items()))
            if now - seen_at <= self.window:
                break
            del self._seen[key]
