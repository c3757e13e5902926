"""What a store error means for the caller: retry later, or never.

    classify(exc) -> TemporaryError | RejectedInput | None

    temporary (503 + Retry-After; the worker retries)   locked, busy, disk full, I/O error,
        read-only file, connection refused or lost, pool exhausted, the file gone or replaced
    never storable (400)                                 a value the schema refuses (DataError)
    None                                                 not a store error: a bug, a 500

Both drivers are covered: SQLite's own `sqlite3` (the inbox's fast path) and SQLAlchemy's
wrappers around sqlite3 and psycopg.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa

from trigger_service.errors import RejectedInput, TemporaryError

# How long a sender should wait before retrying a delivery the store could not take.
RETRY_AFTER_SECONDS = 5.0


class StoreUnavailable(TemporaryError):
    """The store cannot take a write now (locked, full, gone, down): answered 503."""

    def __init__(self, message: str, delay: float | None = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message, delay)


def _reason(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).splitlines()[0]
    return f"{type(error).__name__}: {text}"[:300]


def classify(error: BaseException) -> TemporaryError | RejectedInput | None:
    """The domain error for a database error, or None when it is not one."""
    if isinstance(error, TemporaryError):
        return error
    if isinstance(error, sa.DataError | sqlite3.DataError):
        return RejectedInput(f"a value cannot be stored: {_reason(error)}")
    if isinstance(
        error,
        sa.OperationalError
        | sa.InterfaceError
        | sa.TimeoutError
        | sa.DisconnectionError
        | sa.ResourceClosedError
        | sqlite3.OperationalError
        | sqlite3.InterfaceError,
    ):
        return StoreUnavailable(f"the store is unavailable: {_reason(error)}")
    if isinstance(error, sa.DatabaseError | sqlite3.DatabaseError):
        # "file is not a database", "disk image is malformed", a replaced file: nothing a
        # sender did; a restart (or the operator) fixes it.
        return StoreUnavailable(f"the store is unavailable: {_reason(error)}")
    return None


def as_domain_error(error: BaseException) -> BaseException:
    """classify(error), chained to the original; the error itself when it is not a store error."""
    domain = classify(error)
    if domain is None or domain is error:
        return error
    domain.__cause__ = error
    return domain
