"""Reading a body nobody has vouched for yet: within a size limit, a time limit, and a budget of
bytes shared by every request whose signature is not yet checked.

    async with unverified(budget) as claim:
        body = await read_body(request, limit, timeout, claim)
        ... verify the signature ...
    # leaving the block returns the bytes to the budget

PayloadTooLarge (413): over `limit`. BodyTimeout (408): the body did not arrive within `timeout`
seconds (a stalled or trickling client). TemporaryError (503): the budget is spent, so a flood
of unauthenticated bodies costs at most `max_unverified_bytes` of memory, whatever the number of
connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from trigger_service.errors import BodyTimeout, PayloadTooLarge, RejectedInput, TemporaryError
from trigger_service.metrics import UNVERIFIED_BYTES


@dataclass
class ByteBudget:
    """Bytes held by unverified requests, across connections (one event loop: no lock)."""

    limit: int
    held: int = 0

    def take(self, size: int) -> None:
        if self.held + size > self.limit:
            raise TemporaryError(
                f"too many unverified request bytes in flight (limit {self.limit}); retry later"
            )
        self.held += size
        UNVERIFIED_BYTES.set(self.held)

    def give_back(self, size: int) -> None:
        self.held -= size
        UNVERIFIED_BYTES.set(self.held)


def shared_budget(state: Any, limit: int) -> ByteBudget:
    """The application's one budget of unverified bytes, kept on `state` (made on first use)."""
    budget: ByteBudget | None = getattr(state, "unverified_bytes", None)
    if budget is None:
        budget = state.unverified_bytes = ByteBudget(limit)
    return budget


@dataclass
class Claim:
    budget: ByteBudget
    size: int = 0

    def take(self, size: int) -> None:
        self.budget.take(size)
        self.size += size


@asynccontextmanager
async def unverified(budget: ByteBudget) -> AsyncIterator[Claim]:
    claim = Claim(budget)
    try:
        yield claim
    finally:
        budget.give_back(claim.size)


async def read_body(request: Request, limit: int, timeout: float, claim: Claim) -> bytes:
    """The raw body, refusing more than `limit` bytes without reading them all, a body slower
    than `timeout` seconds, and bytes beyond the shared budget."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RejectedInput("invalid Content-Length header")
        if int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
                claim.take(len(chunk))
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(f"body not received within {timeout:g}s") from None
    return b"".join(chunks)
