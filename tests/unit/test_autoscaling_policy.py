"""The scaling policy: a table of cases, then properties that must hold for any input."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnr.autoscaling.policy import (
    Decision,
    Observation,
    PolicyConfig,
    Recommendation,
    Rule,
    decide,
    recommend,
)

CONFIG = PolicyConfig(
    min_tasks=0,
    max_tasks=10,
    target_per_task=50,
    activation_threshold=1,
    stabilization_seconds=300,
    scale_in_step=2,
)
NOW = 10_000.0


def seen(
    ready: int = 0,
    unacked: int = 0,
    current: int = 0,
    busy: int | None = 0,
    deploying: bool = False,
    now: float = NOW,
) -> Observation:
    return Observation(ready, unacked, current, busy, deploying, now)


def past(*tasks_seconds_ago: tuple[int, float]) -> list[Recommendation]:
    return [Recommendation(NOW - ago, tasks) for tasks, ago in tasks_seconds_ago]


# ------------------------------------------------------------------------------ table

CASES = [
    # (name, config changes, observation, history, expected rule, expected desired)
    ("idle stays at zero", {}, seen(), [], Rule.STEADY, 0),
    ("one message wakes the service", {}, seen(ready=1), [], Rule.ACTIVATE, 1),
    ("from zero straight to what the backlog needs", {}, seen(ready=420), [], Rule.ACTIVATE, 9),
    (
        "below the activation threshold stays at zero",
        {"activation_threshold": 5},
        seen(ready=4),
        [],
        Rule.STEADY,
        0,
    ),
    (
        "reaching the activation threshold wakes it",
        {"activation_threshold": 5},
        seen(ready=5),
        [],
        Rule.ACTIVATE,
        1,
    ),
    (
        "unacked messages count as backlog",
        {},
        seen(ready=60, unacked=41, current=2),
        [],
        Rule.SCALE_OUT,
        3,
    ),
    ("scale out at once, up to max", {}, seen(ready=5000, current=2), [], Rule.SCALE_OUT, 10),
    ("enough tasks: steady", {}, seen(ready=100, current=2, busy=2), [], Rule.STEADY, 2),
    (
        "a drop waits for the window",
        {},
        seen(ready=0, current=4, busy=0),
        past((4, 200)),
        Rule.STABILIZING,
        4,
    ),
    (
        "after the window, in by at most the step",
        {},
        seen(ready=0, current=6, busy=0),
        past((6, 400), (0, 200), (0, 60)),
        Rule.SCALE_IN,
        4,
    ),
    (
        "scale in to the window's largest recommendation",
        {},
        seen(ready=50, current=6, busy=1),
        past((5, 400), (5, 200), (1, 60)),
        Rule.SCALE_IN,
        5,
    ),
    (
        "never below the tasks holding unacked work",
        {"scale_in_step": 10},
        seen(unacked=3, current=6, busy=3),
        past((0, 400)),
        Rule.SCALE_IN,
        3,
    ),
    (
        "every task busy: the window remembers them, hold",
        {},
        seen(unacked=4, current=4, busy=4),
        past((0, 400)),
        Rule.STABILIZING,
        4,
    ),
    ("busy tasks unknown: hold", {}, seen(ready=0, current=3, busy=None), [], Rule.HELD_UNKNOWN, 3),
    (
        "no history (store down): hold",
        {},
        seen(ready=0, current=3, busy=0),
        None,
        Rule.HELD_UNKNOWN,
        3,
    ),
    (
        "no history still scales out",
        {},
        seen(ready=200, current=1, busy=1),
        None,
        Rule.SCALE_OUT,
        4,
    ),
    (
        "a deployment blocks scale out",
        {},
        seen(ready=900, current=1, deploying=True),
        [],
        Rule.DEPLOYMENT,
        1,
    ),
    (
        "a deployment blocks scale in",
        {},
        seen(current=5, deploying=True),
        past((0, 600)),
        Rule.DEPLOYMENT,
        5,
    ),
    ("minimum honoured when idle", {"min_tasks": 2}, seen(current=2, busy=0), [], Rule.STEADY, 2),
    ("below minimum: up to it", {"min_tasks": 2}, seen(current=0), [], Rule.ACTIVATE, 2),
    (
        "above maximum: down to it at once",
        {"max_tasks": 3},
        seen(ready=900, current=8, busy=8),
        [],
        Rule.CLAMPED,
        3,
    ),
]


@pytest.mark.parametrize(
    ("changes", "observation", "history", "rule", "desired"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_policy_cases(
    changes: dict[str, int],
    observation: Observation,
    history: list[Recommendation] | None,
    rule: Rule,
    desired: int,
) -> None:
    decision = decide(replace(CONFIG, **changes), observation, history)
    assert (decision.rule, decision.desired) == (rule, desired)
    assert decision.current == observation.current


def test_busy_tasks_seen_in_the_window_keep_the_count() -> None:
    # A steady stream: little backlog, but two tasks were busy three minutes ago.
    history = past((2, 400), (2, 180), (1, 120), (1, 60))
    decision = decide(CONFIG, seen(ready=2, unacked=1, current=2, busy=1), history)
    assert (decision.rule, decision.desired, decision.stabilized) == (Rule.STABILIZING, 2, 2)
    assert decision.history[-1] == Recommendation(NOW, 1)


def test_a_fresh_state_store_holds_scale_in_for_one_window() -> None:
    decision = decide(CONFIG, seen(current=4, busy=0), [])
    assert (decision.rule, decision.desired) == (Rule.STABILIZING, 4)


def test_history_keeps_the_window_its_witness_and_this_run() -> None:
    decision = decide(CONFIG, seen(ready=120, current=3, busy=3), past((4, 400), (5, 100)))
    assert decision.history == (
        Recommendation(NOW - 400, 4),
        Recommendation(NOW - 100, 5),
        Recommendation(NOW, 3),
    )
    assert decision.stabilized == 5


@pytest.mark.parametrize(
    "changes",
    [
        {"min_tasks": 3, "max_tasks": 2},
        {"min_tasks": -1},
        {"target_per_task": 0},
        {"activation_threshold": 0},
        {"scale_in_step": 0},
        {"stabilization_seconds": -1},
    ],
)
def test_invalid_configuration_is_refused(changes: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        replace(CONFIG, **changes)


# ------------------------------------------------------------------------- properties

configs = st.builds(
    PolicyConfig,
    min_tasks=st.integers(0, 5),
    max_tasks=st.integers(5, 50),
    target_per_task=st.integers(1, 200),
    activation_threshold=st.integers(1, 50),
    stabilization_seconds=st.sampled_from([0.0, 60.0, 300.0, 900.0]),
    scale_in_step=st.integers(1, 10),
)
counts = st.integers(0, 100_000)
histories = st.one_of(
    st.none(),
    st.lists(
        st.builds(Recommendation, at_s=st.floats(NOW - 2000, NOW - 1), tasks=st.integers(0, 60)),
        max_size=20,
    ),
)


@given(
    config=configs,
    ready=counts,
    unacked=counts,
    current=st.integers(0, 60),
    busy=st.one_of(st.none(), st.integers(0, 60)),
    history=histories,
)
def test_never_outside_min_max_unless_a_deployment_holds(
    config: PolicyConfig,
    ready: int,
    unacked: int,
    current: int,
    busy: int | None,
    history: list[Recommendation] | None,
) -> None:
    decision = decide(config, seen(ready, unacked, current, busy), history)
    assert config.min_tasks <= decision.desired <= config.max_tasks
    held = decide(config, seen(ready, unacked, current, busy, deploying=True), history)
    assert held.desired == current


@given(config=configs, low=counts, extra=counts, current=st.integers(0, 60), history=histories)
def test_monotone_in_depth(
    config: PolicyConfig, low: int, extra: int, current: int, history: list[Recommendation] | None
) -> None:
    assert recommend(low, config) <= recommend(low + extra, config)
    shallow = decide(config, seen(ready=low, current=current, busy=0), history)
    deep = decide(config, seen(ready=low + extra, current=current, busy=0), history)
    assert shallow.desired <= deep.desired


@given(config=configs, ready=st.integers(0, 100_000))
def test_scale_from_zero_in_one_run(config: PolicyConfig, ready: int) -> None:
    decision = decide(config, seen(ready=ready, current=0), [])
    if ready >= config.activation_threshold or config.min_tasks > 0:
        assert decision.desired >= 1
        assert decision.desired == recommend(ready, config)
    else:
        assert decision.desired == 0


def run_constant(
    config: PolicyConfig, ready: int, unacked: int, start: int, runs: int
) -> list[Decision]:
    """Feed each run's desired count back as the next run's current count, one a minute,
    at a depth that does not change; busy tasks are as many as the unacked allow."""
    decisions: list[Decision] = []
    current, history = start, []
    for minute in range(runs):
        busy = min(current, unacked)
        decision = decide(config, seen(ready, unacked, current, busy, now=60.0 * minute), history)
        decisions.append(decision)
        current, history = decision.desired, list(decision.history)
    return decisions


@settings(max_examples=200)
@given(
    config=configs,
    ready=st.integers(0, 5000),
    unacked=st.integers(0, 200),
    start=st.integers(0, 60),
)
def test_no_flapping_under_constant_depth(
    config: PolicyConfig, ready: int, unacked: int, start: int
) -> None:
    counts_seen = [d.desired for d in run_constant(config, ready, unacked, start, runs=120)]
    steps = [b - a for a, b in zip([start, *counts_seen], counts_seen, strict=False) if b != a]
    # Every change goes the same way: the count moves to its level once and stays.
    assert all(step > 0 for step in steps) or all(step < 0 for step in steps)
    assert counts_seen[-1] == counts_seen[-2]


def test_constant_depth_settles_on_the_recommendation() -> None:
    decisions = run_constant(CONFIG, ready=120, unacked=0, start=9, runs=30)
    assert [d.desired for d in decisions][:8] == [9, 9, 9, 9, 9, 7, 5, 3]
    assert decisions[-1].desired == 3 and decisions[-1].rule is Rule.STEADY
