"""The one classification of a backend's HTTP answer (KFP, the Kubernetes API for KServe)."""

from __future__ import annotations

import pytest

from trigger_service.errors import PermanentError, TemporaryError, for_status


@pytest.mark.parametrize("status", [0, 408, 429, 500, 502, 503, 504, 599])
def test_no_answer_timeouts_throttling_and_server_errors_are_temporary(status: int) -> None:
    error = for_status(status, f"HTTP {status}", delay=7.0)
    assert isinstance(error, TemporaryError)
    assert error.delay == 7.0 and str(error) == f"HTTP {status}"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 413, 422])
def test_every_other_refusal_is_permanent(status: int) -> None:
    error = for_status(status, f"HTTP {status}", delay=7.0)
    assert isinstance(error, PermanentError) and not isinstance(error, TemporaryError)
    assert str(error) == f"HTTP {status}"
