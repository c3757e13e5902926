"""One HTTP call of a channel, its failures mapped onto the project's two kinds.

    httpx.TransportError (refused, reset, timeout)   -> TemporaryError
    408, 425, 429, 5xx                               -> TemporaryError(delay from the headers)
    403 with X-RateLimit-Remaining: 0 or Retry-After -> TemporaryError (GitHub's rate limits)
    any other 4xx                                    -> PermanentError

A token that cannot be a header value (a newline left over from `echo token >`, a control
character) refuses the start (`header_token`); an illegal header at send time is permanent and
its message never repeats the header (it would hold the token).

The delay is the server's own word when it gives one: `Retry-After` (seconds or an HTTP date),
else `X-RateLimit-Reset` / `RateLimit-Reset` (epoch seconds: GitHub, GitLab, Gitea). It is
clamped to [0, MAX_SERVER_DELAY]: a broken or hostile header cannot park an item for years.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from trigger_service.errors import PermanentError, TemporaryError

MAX_SERVER_DELAY = 3600.0
TEMPORARY_STATUSES = frozenset({408, 425, 429})


def header_token(token: str | None, env: str) -> str | None:
    """A token fit for an HTTP header: surrounding whitespace removed (a Secret written with
    `echo` ends in a newline), None when empty. Raises ValueError naming `env` when a control
    character is left: httpx would refuse every request, and retrying cannot help."""
    if token is None:
        return None
    value = token.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{env} holds a control character (a line break?): not a token")
    return value or None


def server_delay(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait, if it asked (clamped; None when it did not)."""
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        value = retry_after.strip()
        seconds: float | None
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError, IndexError, OverflowError):
                seconds = None
        if seconds is not None and math.isfinite(seconds):
            return min(max(seconds, 0.0), MAX_SERVER_DELAY)
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        reset = headers.get(name)
        if reset is None:
            continue
        try:
            at = float(reset.strip())
        except ValueError:
            continue
        if math.isfinite(at):
            # Epoch seconds (GitHub, GitLab); a small number is a delta (the IETF draft).
            seconds = at - now if at > 1_000_000_000 else at
            return min(max(seconds, 0.0), MAX_SERVER_DELAY)
    return None


def is_rate_limited(response: httpx.Response) -> bool:
    headers = response.headers
    if response.status_code == 429:
        return True
    return response.status_code == 403 and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    )


def error_for(response: httpx.Response, what: str, now: float) -> TemporaryError | PermanentError:
    """The project's error for a failed answer, with the server's message (never a token)."""
    status = response.status_code
    text = f"{what}: HTTP {status}: {_message(response)}"
    if status >= 500 or status in TEMPORARY_STATUSES or is_rate_limited(response):
        return TemporaryError(text, server_delay(response.headers, now))
    return PermanentError(text)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        for name in ("message", "error", "error_message"):
            value = body.get(name)
            if isinstance(value, str | dict | list) and value:
                return str(value)[:300]
    return str(body)[:300]


def call(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    clock: Callable[[], float],
    accept: Callable[[httpx.Response], bool] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; return the response if it succeeded (or `accept` takes it), else raise
    TemporaryError / PermanentError with the original exception chained."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.LocalProtocolError as exc:
        # Our own request is malformed (a header value): the same next time; and the message
        # quotes the header, which may be a token.
        raise PermanentError(f"{what}: the request cannot be sent ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise TemporaryError(f"{what}: {type(exc).__name__}: {exc}") from exc
    if response.is_success or (accept is not None and accept(response)):
        return response
    raise error_for(response, what, clock())
