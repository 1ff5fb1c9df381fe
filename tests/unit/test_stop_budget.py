"""The worker's stop plan: every wait of a stop fits inside the task's stopTimeout."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.worker.stop_budget import MIN_STOP_TIMEOUT_SECONDS, RESERVED_SECONDS, StopBudget


def test_fargate_default_leaves_23_seconds_of_drain() -> None:
    budget = StopBudget.within(30)
    assert budget.drain_seconds == 23
    assert budget.total_seconds == 30


@given(st.floats(min_value=MIN_STOP_TIMEOUT_SECONDS, max_value=120))
def test_the_waits_never_add_up_to_more_than_the_timeout(stop_timeout: float) -> None:
    budget = StopBudget.within(stop_timeout)
    assert budget.total_seconds == pytest.approx(stop_timeout)
    assert budget.drain_seconds >= 1
    assert budget.drain_seconds == pytest.approx(stop_timeout - RESERVED_SECONDS)


def test_a_timeout_without_room_to_drain_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no drain time"):
        StopBudget.within(MIN_STOP_TIMEOUT_SECONDS - 0.5)
