"""The scaling policy: how many worker tasks a queue depth calls for. Pure.

    recommended = 0                                   if backlog < activation threshold
                = clamp(ceil(backlog / target per task), min, max)   otherwise
    backlog     = ready + unacknowledged

* **Scale out at once** (including 0 -> 1 as soon as the backlog reaches the
  activation threshold): waiting costs latency on every queued message.
* **Scale in slowly:** only to the largest recommendation of the last
  ``stabilization_seconds`` (the Kubernetes HPA's rule), by at most ``scale_in_step``
  tasks per run, and never below the tasks that hold unacknowledged messages. Each run
  remembers max(recommended, busy tasks): a service that just keeps up with a steady
  stream has a small backlog but busy tasks, and without this it would scale in under
  its load, fall behind and scale out again, once per window (the simulator showed it).
  A dip in depth between two bursts costs nothing, and a constant depth settles on one
  count and stays there.
* **Hold during a deployment:** ECS is replacing tasks; counts are in flux.
* **Unknown means hold:** without the window's history (state store down) or without
  the number of busy tasks (the AMQP fallback cannot see unacknowledged messages) the
  policy never scales in; it still scales out.

The history is returned with the decision for the caller to store (see
``rnr.autoscaling.state``); time is passed in, so the function is deterministic and the
simulator in ``bench/autoscale_sim.py`` runs exactly this code.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter


class Rule(enum.StrEnum):
    """Which branch of the policy decided; the decision record names it."""

    DEPLOYMENT = "deployment_in_progress"
    ACTIVATE = "activate_from_zero"
    SCALE_OUT = "scale_out"
    STEADY = "steady"
    STABILIZING = "scale_in_stabilizing"
    HELD_UNKNOWN = "scale_in_held_unknown"
    SCALE_IN = "scale_in"
    CLAMPED = "clamped_to_bounds"


@dataclass(frozen=True)
class PolicyConfig:
    min_tasks: int
    max_tasks: int
    target_per_task: int
    activation_threshold: int
    stabilization_seconds: float
    scale_in_step: int

    def __post_init__(self) -> None:
        if not 0 <= self.min_tasks <= self.max_tasks:
            raise ValueError(
                f"need 0 <= min_tasks <= max_tasks, got {self.min_tasks}, {self.max_tasks}"
            )
        if self.target_per_task < 1 or self.activation_threshold < 1 or self.scale_in_step < 1:
            raise ValueError("target_per_task, activation_threshold and scale_in_step must be >= 1")
        if self.stabilization_seconds < 0:
            raise ValueError("stabilization_seconds must be >= 0")


@dataclass(frozen=True)
class Observation:
    """What one run saw. ``current`` is the service's desired count (tasks asked for,
    running or starting); ``busy_tasks`` is None when the depth source cannot tell."""

    ready: int
    unacked: int
    current: int
    busy_tasks: int | None
    deployment_in_progress: bool
    now_s: float

    @property
    def backlog(self) -> int:
        return self.ready + self.unacked


@dataclass(frozen=True)
class Recommendation:
    at_s: float
    tasks: int


@dataclass(frozen=True)
class Decision:
    rule: Rule
    current: int
    desired: int
    recommended: int
    stabilized: int | None
    history: tuple[Recommendation, ...]

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def recommend(backlog: int, config: PolicyConfig) -> int:
    """Tasks the backlog alone calls for, within [min, max]; monotone in the backlog."""
    wanted = (
        0 if backlog < config.activation_threshold else math.ceil(backlog / config.target_per_task)
    )
    return min(max(wanted, config.min_tasks), config.max_tasks)


def decide(
    config: PolicyConfig,
    observation: Observation,
    history: Sequence[Recommendation] | None,
) -> Decision:
    """The desired count for this run, the rule that fired and the history to keep."""
    current = observation.current
    recommended = recommend(observation.backlog, config)
    window_start = observation.now_s - config.stabilization_seconds
    earlier = sorted(
        (r for r in history or () if r.at_s < observation.now_s), key=attrgetter("at_s")
    )
    # The newest recommendation at or before the window's start proves the window was
    # watched from its start; without one (a fresh state store) nothing scales in yet.
    witness = [r for r in earlier if r.at_s <= window_start][-1:]
    in_window = [r for r in earlier if r.at_s > window_start]
    # What this run saw in use counts too: tasks busy now were needed now, even when
    # the backlog is small because they keep up with it. Remembered over the window,
    # this keeps a service that is just keeping up from scaling in under its load.
    in_use = min(max(recommended, observation.busy_tasks or 0), config.max_tasks)
    now = Recommendation(observation.now_s, in_use)
    kept = (*witness, *in_window, now)
    stabilized: int | None = None
    if history is not None:
        stabilized = max(r.tasks for r in (*in_window, now)) if witness else current

    if observation.deployment_in_progress:
        return Decision(Rule.DEPLOYMENT, current, current, recommended, stabilized, kept)

    rule, desired = _rule_and_count(config, observation, recommended, stabilized)
    bounded = min(max(desired, config.min_tasks), config.max_tasks)
    if bounded != desired:
        rule, desired = Rule.CLAMPED, bounded
    return Decision(rule, current, desired, recommended, stabilized, kept)


def _rule_and_count(
    config: PolicyConfig, observation: Observation, recommended: int, stabilized: int | None
) -> tuple[Rule, int]:
    current = observation.current
    if recommended > current:
        return (Rule.ACTIVATE if current == 0 else Rule.SCALE_OUT), recommended
    if recommended == current:
        return Rule.STEADY, current
    if stabilized is None or observation.busy_tasks is None:
        return Rule.HELD_UNKNOWN, current
    if stabilized >= current:
        return Rule.STABILIZING, current
    # The window already holds this run's busy tasks; the floor is stated for clarity.
    stepped = max(stabilized, current - config.scale_in_step, observation.busy_tasks)
    return Rule.SCALE_IN, stepped
