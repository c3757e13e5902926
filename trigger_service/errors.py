"""Domain errors, drawn once.

    TriggerError
    ├── RejectedInput        the sender sent something we refuse (HTTP 400)
    │   ├── Unauthorized     bad or missing signature/token (HTTP 401)
    │   ├── PayloadTooLarge  body over the configured limit (HTTP 413)
    │   └── BodyTimeout      body not received within the read timeout (HTTP 408)
    ├── Ignored              valid, but of no interest (HTTP 200 with the reason)
    ├── TemporaryError       may succeed later: retry with backoff
    └── PermanentError       will never succeed: dead-letter with the reason
        └── NotFound         the backend has no such run or version (HTTP 404)

HTTP status codes are mapped in one place (trigger_service.api.errors); domain code never
raises HTTPException. Backend errors keep the original exception chained (`raise ... from`),
and a backend's HTTP answer is classified in one place too (`for_status`).
"""

from __future__ import annotations


class TriggerError(Exception):
    """Base of every error this project raises on purpose."""


class RejectedInput(TriggerError):
    """The request is malformed or lacks what the source needs."""


class Unauthorized(RejectedInput):
    """The signature or token is missing or wrong. The message never contains a secret."""


class PayloadTooLarge(RejectedInput):
    """The body is larger than the configured limit."""


class BodyTimeout(RejectedInput):
    """The body did not arrive within the read timeout (a stalled or trickling client)."""


class Ignored(TriggerError):
    """A valid delivery of no interest (ping, test event, tagging): acknowledged, not stored."""


class TemporaryError(TriggerError):
    """A failure that may go away (connection refused, 5xx): retry after `delay` seconds."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(TriggerError):
    """A failure that retrying cannot fix (401/403/404/400 from KFP, invalid pipeline)."""


class NotFound(PermanentError):
    """The backend says the object (a run, a pipeline version) does not exist: deleted there."""


# No answer at all (0: the connection broke, TLS failed), timeouts, throttling, server errors.
_TEMPORARY_STATUSES = frozenset({0, 408, 429})


def for_status(status: int, message: str, *, delay: float | None = None) -> TriggerError:
    """The error to raise for a backend's HTTP answer `status` (KFP, the Kubernetes API):
    TemporaryError (retried, after `delay` seconds if the server asked for it) for 0, 408, 429
    and 5xx; NotFound for 404; PermanentError for every other status (400, 401, 403, 409, 422,
    ...)."""
    if status in _TEMPORARY_STATUSES or status >= 500:
        return TemporaryError(message, delay=delay)
    if status == 404:
        return NotFound(message)
    return PermanentError(message)
