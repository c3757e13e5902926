"""How long to wait before trying a temporary failure again: one backoff, passed whole.

    Backoff.from_settings(settings)   # TRIGGER_RETRY_BASE_SECONDS, TRIGGER_RETRY_MAX_SECONDS
    Backoff(base_seconds=2, max_seconds=300).delay(attempt=3) -> seconds, uniform in [2, 8]

Used by the worker (an event whose git call failed, a decision whose submission failed) and the
outbox sender (a delivery that failed). Full jitter spreads the retries of many workers that
failed at once (one outage) instead of sending them back together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trigger_service.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff with full jitter, from `base_seconds` doubling up to `max_seconds`."""

    base_seconds: float
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(base_seconds=settings.retry_base_seconds, max_seconds=settings.retry_max_seconds)

    def delay(self, attempt: int) -> float:
        """Seconds before try `attempt + 1` (attempts count from 1): uniform in
        [base, min(max, base * 2**(attempt - 1))]."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        return random.uniform(min(self.base_seconds, ceiling), ceiling)
