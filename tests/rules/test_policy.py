"""Policy: merging layers, admit() with a fake clock, due_at()."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trigger_service.rules import Go, Policy, PolicySpec, Queue, Suppress, admit, due_at
from trigger_service.rules.policy import merge_policy

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC).timestamp()


def test_merge_most_specific_wins_field_by_field() -> None:
    file = PolicySpec(cooldown_seconds=10, concurrency="skip", max_runs_per_hour=4)
    pipeline = PolicySpec(cooldown_seconds=60)
    trigger = PolicySpec(concurrency="parallel", debounce_seconds=5)
    assert merge_policy(file, pipeline, trigger) == Policy(
        debounce_seconds=5, cooldown_seconds=60, concurrency="parallel", max_runs_per_hour=4
    )


def test_merge_of_nothing_is_the_defaults() -> None:
    policy = merge_policy(PolicySpec(), PolicySpec())
    assert policy == Policy()
    assert (policy.debounce_seconds, policy.max_wait_seconds, policy.concurrency) == (
        0,
        300,
        "queue-one",
    )


def run(policy: Policy, **state: object) -> object:
    values: dict = {
        "active_runs": 0,
        "queued": False,
        "last_run_started": None,
        "runs_last_hour": 0,
        **state,
    }
    return admit(policy, NOW, **values)


@pytest.mark.parametrize(
    ("policy", "state", "expected"),
    [
        (Policy(), {}, Go()),
        (Policy(), {"active_runs": 1}, Queue("queued: a run is active (concurrency queue-one)")),
        (Policy(), {"active_runs": 1, "queued": True}, Queue),  # caller coalesces
        (
            Policy(concurrency="skip"),
            {"active_runs": 2},
            Suppress("skipped: a run is active (concurrency skip)"),
        ),
        (Policy(concurrency="skip"), {}, Go()),
        (Policy(concurrency="parallel"), {"active_runs": 5}, Go()),
        (
            Policy(cooldown_seconds=250),
            {"last_run_started": NOW - 10},
            Suppress("suppressed: cooldown until 12:04:00Z"),
        ),
        (Policy(cooldown_seconds=60), {"last_run_started": NOW - 60}, Go()),  # just over
        (Policy(cooldown_seconds=0), {"last_run_started": NOW}, Go()),
        (
            Policy(max_runs_per_hour=10),
            {"runs_last_hour": 10},
            Suppress("suppressed: 10 runs in the last hour (max 10)"),
        ),
        (Policy(max_runs_per_hour=10), {"runs_last_hour": 9}, Go()),
        (Policy(max_runs_per_hour=0), {"runs_last_hour": 10_000}, Go()),  # 0: unlimited
        # the hourly limit is named before cooldown, cooldown before concurrency
        (
            Policy(max_runs_per_hour=1, cooldown_seconds=60, concurrency="skip"),
            {"runs_last_hour": 1, "last_run_started": NOW, "active_runs": 1},
            Suppress,
        ),
        (
            Policy(cooldown_seconds=60, concurrency="skip"),
            {"last_run_started": NOW - 1, "active_runs": 1},
            Suppress("suppressed: cooldown until 12:00:59Z"),
        ),
    ],
)
def test_admit(policy: Policy, state: dict, expected: object) -> None:
    got = run(policy, **state)
    if isinstance(expected, type):
        assert isinstance(got, expected)
        if state.get("runs_last_hour"):
            assert "runs in the last hour" in got.reason  # type: ignore[attr-defined]
    else:
        assert got == expected


def test_queue_one_with_a_follow_up_queued_says_it_coalesces() -> None:
    got = run(Policy(), active_runs=1, queued=True)
    assert isinstance(got, Queue) and "coalesced" in got.reason


@pytest.mark.parametrize(
    ("policy", "first", "last", "due"),
    [
        (Policy(), 100.0, 100.0, 100.0),  # no debounce: due at once
        (Policy(debounce_seconds=30), 100.0, 100.0, 130.0),
        (Policy(debounce_seconds=30), 100.0, 150.0, 180.0),  # each event pushes it back
        (Policy(debounce_seconds=30, max_wait_seconds=60), 100.0, 150.0, 160.0),  # capped
        (Policy(debounce_seconds=30, max_wait_seconds=0), 100.0, 120.0, 100.0),
    ],
)
def test_due_at(policy: Policy, first: float, last: float, due: float) -> None:
    assert due_at(policy, first, last) == due


@given(
    debounce=st.floats(0, 1e4),
    max_wait=st.floats(0, 1e4),
    first=st.floats(0, 1e9),
    gap=st.floats(0, 1e4),
)
def test_due_at_never_later_than_max_wait_nor_later_than_debounce(
    debounce: float, max_wait: float, first: float, gap: float
) -> None:
    policy = Policy(debounce_seconds=debounce, max_wait_seconds=max_wait)
    due = due_at(policy, first, first + gap)
    assert due <= first + max_wait
    assert due <= first + gap + debounce
