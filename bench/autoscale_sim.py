"""Autoscaling policies replayed against a flood burst: a discrete-event simulation.

One workload trace (seeded) is replayed against three policies that set the worker
service's desired task count:

* ``reference``: the reference design. Every 2 minutes, backlog per task = messages /
  running tasks (0 when none runs); step scaling adds one task when it is >= 100, and
  removes one when the queue is empty; at least 1 task.
* ``target_tracking``: AWS Application Auto Scaling target tracking on BacklogPerTask =
  backlog / max(running, 1), published every minute, target = our target per task. As
  AWS runs it: the scale-out alarm fires after 3 consecutive 1-minute datapoints above
  the target and sets capacity = ceil(capacity x metric / target); the scale-in alarm
  fires after 15 consecutive datapoints below it; ECS's default 300 s scale-in cooldown.
  Minimum 0 (with max(running, 1) the metric is the whole backlog at zero tasks, so it
  starts the first task, 3 minutes late).
* ``ours``: ``rnr.autoscaling.policy.decide``, the production function, with the
  autoscaler's default settings, run on the Lambda's schedule (every 60 s) and woken by
  the producer: a message published while the desired count is 0 triggers one extra
  evaluation ``--wake-delay-seconds`` later (2 s: the producer's asynchronous invoke and
  the Lambda's start). The wake does not shift the schedule. The other two policies have
  no such hook. ``--no-wake`` runs ours on its schedule alone.

The same cluster model serves all three: a task launched now takes ``--startup-seconds``
to take work (Fargate provisioning and image pull, about 60 s, plus the worker's
hydrofabric index, 6.5 s cold in the routing benchmark); it takes one message at a time;
a scale-in stops tasks that are still starting, then idle ones, and lets a busy task
finish its message first (the worker's scale-in protection). Task-minutes count from
launch to stop (what Fargate bills).

Workload (``--hours`` long): background products at 10 an hour (Poisson), and a flood
burst of 2,000 products at uniform random times within 30 minutes, starting at
``--burst-at-minutes``. Per-message service time (seconds a task spends on it):

* routing: segments x steps / rate, with the rate drawn uniformly between the lowest
  and highest segment-steps/s of the routing benchmark (1.48 to 1.91 million, runs 1 to
  3, 50 to 100,000 segments); segments lognormal around HPDT2's 50-segment chain (the
  benchmark's chain length; sigma 0.8, 1 to 2,000); steps = 12 per hour of a 3- to
  10-day forecast (864 to 2,880 five-minute steps);
* segment extraction: lognormal with the benchmark's warm median, 0.24 ms, capped at its
  slowest, 28 ms;
* I/O, which the benchmark does not measure: the product text, two NWPS calls and two
  S3 writes, lognormal with median 1 s (sigma 0.5). This is an assumption, and it
  dominates: a message takes about 1.2 s on average.

Usage: ``python bench/autoscale_sim.py [--seed 7] [--out bench/out]``. It prints a table
and writes ``autoscale_<policy>.png`` (queue depth and tasks over time) per policy.
``--seeds 1-7`` instead runs each seed and prints one row per seed (no PNGs).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import itertools
import math
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from rnr.autoscaling.policy import Observation, PolicyConfig, Recommendation, decide  # noqa: E402
from services.autoscaler.settings import AutoscalerSettings  # noqa: E402

ROUTING_RATES = (1_484_803.0, 1_912_798.0)  # segment-steps/s, BENCHMARKS.md routing runs 1-3
HPDT2_SEGMENTS = 50
EXTRACT_MEDIAN_S, EXTRACT_MAX_S = 0.00024, 0.0282
FARGATE_START_S, HYDROFABRIC_LOAD_S = 60.0, 6.5
# Producer run -> asynchronous invoke -> autoscaler Lambda deciding: an assumption (a
# warm invoke takes well under a second; a cold start of the autoscaler about 1 s).
WAKE_DELAY_S = 2.0
# After the trace ends, policies keep running this long for the last messages to finish;
# what is still queued then counts with the time it has waited so far.
DRAIN_S = 4 * 3600.0


def production_policy() -> PolicyConfig:
    """The autoscaler's defaults, from its settings class (no environment read), so the
    simulation and the service never drift apart."""
    return AutoscalerSettings.model_construct().policy()


# ----------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Message:
    publish_s: float
    service_s: float


def service_seconds(rng: np.random.Generator, count: int, io_median_s: float) -> np.ndarray:
    segments = np.clip(np.round(rng.lognormal(math.log(HPDT2_SEGMENTS), 0.8, count)), 1, 2000)
    steps = 12 * rng.uniform(72, 240, count)
    rate = rng.uniform(*ROUTING_RATES, count)
    routing = segments * steps / rate
    extraction = np.minimum(rng.lognormal(math.log(EXTRACT_MEDIAN_S), 1.0, count), EXTRACT_MAX_S)
    io = rng.lognormal(math.log(io_median_s), 0.5, count)
    return routing + extraction + io


def workload(args: argparse.Namespace, seed: int) -> list[Message]:
    rng = np.random.default_rng(seed)
    horizon = args.hours * 3600
    background = np.cumsum(rng.exponential(3600 / args.background_per_hour, 200_000))
    background = background[background < horizon]
    burst_start = args.burst_at_minutes * 60
    burst = burst_start + rng.uniform(0, args.burst_minutes * 60, args.burst_products)
    times = np.sort(np.concatenate([background, burst]))
    services = service_seconds(rng, times.size, args.io_median_seconds)
    return [Message(float(t), float(s)) for t, s in zip(times, services, strict=True)]


# ------------------------------------------------------------------------- the cluster


@dataclass
class Task:
    launched_s: float
    ready_s: float
    busy_until_s: float | None = None
    stopped_s: float | None = None
    draining: bool = False

    @property
    def running(self) -> bool:
        return self.stopped_s is None

    def billed_s(self, end_s: float) -> float:
        return (self.stopped_s if self.stopped_s is not None else end_s) - self.launched_s


@dataclass
class View:
    """What a policy may see at a tick."""

    now_s: float
    ready: int
    unacked: int
    running: int
    desired: int
    busy: int


class Policy:
    name = ""
    period_s = 60.0
    # Seconds from a message published at zero desired tasks to an extra evaluation, or
    # None: the policy runs on its schedule only.
    wake_delay_s: float | None = None

    def tick(self, view: View) -> int:
        raise NotImplementedError


class ReferenceStep(Policy):
    name, period_s = "reference", 120.0

    def __init__(self, max_tasks: int) -> None:
        self.max_tasks = max_tasks

    def tick(self, view: View) -> int:
        backlog = view.ready + view.unacked
        per_task = backlog / view.running if view.running else 0.0
        if per_task >= 100:
            return min(view.desired + 1, self.max_tasks)
        if backlog == 0:
            return max(view.desired - 1, 1)
        return max(view.desired, 1)


class TargetTracking(Policy):
    name, period_s = "target_tracking", 60.0
    HIGH_DATAPOINTS, LOW_DATAPOINTS, SCALE_IN_COOLDOWN_S = 3, 15, 300.0

    def __init__(self, target: float, max_tasks: int) -> None:
        self.target, self.max_tasks = target, max_tasks
        self.above = self.below = 0
        self.last_scale_in_s = -math.inf

    def tick(self, view: View) -> int:
        metric = (view.ready + view.unacked) / max(view.running, 1)
        self.above = self.above + 1 if metric > self.target else 0
        self.below = self.below + 1 if metric < self.target else 0
        proportional = math.ceil(max(view.desired, 1) * metric / self.target)
        if self.above >= self.HIGH_DATAPOINTS and proportional > view.desired:
            return min(proportional, self.max_tasks)
        cooled = view.now_s - self.last_scale_in_s >= self.SCALE_IN_COOLDOWN_S
        if self.below >= self.LOW_DATAPOINTS and cooled and proportional < view.desired:
            self.last_scale_in_s = view.now_s
            return max(proportional, 0)
        return view.desired


class Ours(Policy):
    name, period_s = "ours", 60.0

    def __init__(self, config: PolicyConfig, wake_delay_s: float | None = WAKE_DELAY_S) -> None:
        self.config = config
        self.wake_delay_s = wake_delay_s
        self.history: list[Recommendation] = []

    def tick(self, view: View) -> int:
        observation = Observation(
            view.ready, view.unacked, view.desired, view.busy, False, view.now_s
        )
        decision = decide(self.config, observation, self.history)
        self.history = list(decision.history)
        return decision.desired


@dataclass
class Result:
    policy: str
    latencies_s: np.ndarray
    task_minutes: float
    actions: int
    max_tasks: int
    from_zero_s: list[float]
    unfinished: int
    wakes: int
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)


def simulate(
    policy: Policy, messages: list[Message], horizon_s: float, startup_s: float, initial: int
) -> Result:
    seq = itertools.count()
    events: list[tuple[float, int, str, object]] = []

    def at(time_s: float, kind: str, payload: object = None) -> None:
        heapq.heappush(events, (time_s, next(seq), kind, payload))

    tasks: list[Task] = []
    queue: deque[Message] = deque()
    done: list[float] = []
    desired, actions, wakes = initial, 0, 0
    waiting_since: float | None = None  # first arrival while nothing was asked for
    wake_pending = False
    from_zero: list[float] = []
    samples: list[tuple[float, int, int, int]] = []
    for message in messages:
        at(message.publish_s, "arrive", message)
    tasks.extend(Task(-startup_s, 0.0) for _ in range(initial))
    at(0.0, "tick")
    at(0.0, "sample")

    def live() -> list[Task]:
        return [t for t in tasks if t.running and not t.draining]

    def dispatch(now: float) -> None:
        for task in live():
            if not queue:
                return
            if task.ready_s <= now and task.busy_until_s is None:
                message = queue.popleft()
                task.busy_until_s = now + message.service_s
                at(task.busy_until_s, "done", (task, message))

    def resize(now: float) -> None:
        current = live()
        for _ in range(desired - len(current)):
            task = Task(now, now + startup_s)
            tasks.append(task)
            at(task.ready_s, "ready", task)
        surplus = len(current) - desired
        # Starting tasks first, then idle ones; a busy task finishes its message first.
        order = sorted(current, key=lambda t: (t.ready_s <= now, t.busy_until_s is not None))
        for task in order[: max(surplus, 0)]:
            if task.busy_until_s is None:
                task.stopped_s = now
            else:
                task.draining = True

    def evaluate(now: float) -> None:
        """One run of the policy: a scheduled tick or a wake."""
        nonlocal desired, actions, waiting_since
        running = [t for t in live() if t.ready_s <= now]
        busy = sum(t.busy_until_s is not None for t in tasks if t.running)
        view = View(now, len(queue), busy, len(running), desired, busy)
        wanted = policy.tick(view)
        if wanted != desired:
            actions += 1
            if desired == 0 and waiting_since is not None:
                from_zero.append(now - waiting_since)
            desired = wanted
            resize(now)
        if desired > 0:
            waiting_since = None

    now = 0.0
    while events:
        now, _, kind, payload = heapq.heappop(events)
        settled = len(done) == len(messages)
        if (
            kind in {"tick", "sample"}
            and now > horizon_s
            and (settled or now > horizon_s + DRAIN_S)
        ):
            continue
        if kind == "arrive":
            queue.append(payload)  # type: ignore[arg-type]
            if desired == 0 and waiting_since is None:
                waiting_since = now
            if desired == 0 and policy.wake_delay_s is not None and not wake_pending:
                # The producer's wake: one extra run, the schedule unchanged. Messages
                # published before it runs ride on the same wake.
                wake_pending = True
                at(now + policy.wake_delay_s, "wake")
        elif kind == "wake":
            wake_pending = False
            wakes += 1
            evaluate(now)
        elif kind == "done":
            task, message = payload  # type: ignore[misc]
            task.busy_until_s = None
            done.append(now - message.publish_s)
            if task.draining:
                task.stopped_s = now
        elif kind == "tick":
            evaluate(now)
            at(now + policy.period_s, "tick")
        elif kind == "sample":
            backlog = len(queue) + sum(t.busy_until_s is not None for t in tasks if t.running)
            ready_tasks = sum(1 for t in live() if t.ready_s <= now)
            samples.append((now, backlog, ready_tasks, desired))
            at(now + 15.0, "sample")
        dispatch(now)
    end = max(now, horizon_s)
    unfinished = [end - m.publish_s for m in queue]
    return Result(
        policy.name,
        np.array(done + unfinished),
        sum(t.billed_s(end) for t in tasks) / 60,
        actions,
        max(s[3] for s in samples),
        from_zero,
        len(unfinished),
        wakes,
        samples,
    )


# ---------------------------------------------------------------------------- output


def plot(result: Result, out_dir: Path, burst: tuple[float, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = np.array([s[0] for s in result.samples]) / 60
    figure, depth_axis = plt.subplots(figsize=(10, 4.5))
    depth_axis.fill_between(minutes, [s[1] for s in result.samples], color="tab:blue", alpha=0.35)
    depth_axis.set_xlabel("minutes")
    depth_axis.set_ylabel("queue depth (ready + unacked)", color="tab:blue")
    depth_axis.axvspan(*burst, color="grey", alpha=0.1, label="burst")
    tasks_axis = depth_axis.twinx()
    tasks_axis.step(
        minutes,
        [s[2] for s in result.samples],
        where="post",
        color="tab:red",
        label="running tasks",
    )
    tasks_axis.step(
        minutes,
        [s[3] for s in result.samples],
        where="post",
        color="tab:orange",
        linestyle="--",
        label="desired tasks",
    )
    tasks_axis.set_ylabel("tasks", color="tab:red")
    tasks_axis.legend(loc="upper right")
    p95 = np.percentile(result.latencies_s, 95)
    depth_axis.set_title(
        f"{result.policy}: p95 {p95:.0f} s, {result.task_minutes:.0f} task-minutes, "
        f"{result.actions} scaling actions"
    )
    figure.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"autoscale_{result.policy}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


@dataclass(frozen=True)
class Verdict:
    """Ours against the issue's targets on one seed."""

    ours_p95_s: float
    reference_p95_s: float
    slowest_start_s: float
    checks: list[tuple[str, bool]]

    @property
    def p95_met(self) -> bool:
        return self.ours_p95_s <= self.reference_p95_s / 2


def verdict(results: list[Result], period_s: float) -> Verdict:
    by_name = {r.policy: r for r in results}
    ours, reference = by_name["ours"], by_name["reference"]
    ours_p95 = float(np.percentile(ours.latencies_s, 95))
    reference_p95 = float(np.percentile(reference.latencies_s, 95))
    slowest_start = max(ours.from_zero_s, default=0.0)
    checks = [
        (
            f"p95 {ours_p95:.1f} s <= half the reference's {reference_p95:.1f} s",
            ours_p95 <= reference_p95 / 2,
        ),
        (
            f"task-minutes {ours.task_minutes:.1f} <= the reference's {reference.task_minutes:.1f}",
            ours.task_minutes <= reference.task_minutes,
        ),
        (
            f"scale-from-zero: {len(ours.from_zero_s)} times, slowest {slowest_start:.0f} s "
            f"after the first message (schedule period {period_s:.0f} s; {ours.wakes} wakes)",
            slowest_start <= period_s,
        ),
    ]
    return Verdict(ours_p95, reference_p95, slowest_start, checks)


def report(results: list[Result], period_s: float, print_: Callable[[str], None] = print) -> bool:
    print_(
        f"{'policy':<16} {'p50 s':>8} {'p95 s':>8} {'max s':>8} {'task-min':>9} "
        f"{'actions':>8} {'max tasks':>9} {'unfinished':>10}"
    )
    for r in results:
        p50, p95 = np.percentile(r.latencies_s, [50, 95])
        print_(
            f"{r.policy:<16} {p50:>8.1f} {p95:>8.1f} {r.latencies_s.max():>8.1f} "
            f"{r.task_minutes:>9.1f} {r.actions:>8d} {r.max_tasks:>9d} {r.unfinished:>10d}"
        )
    checks = verdict(results, period_s).checks
    for text, ok in checks:
        print_(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return all(ok for _, ok in checks)


def state_at(result: Result, at_s: float) -> str:
    """Where the service stood at ``at_s`` (the last 15 s sample before it): ``up`` (a
    task taking work), ``starting`` (tasks asked for, none taking work yet) or ``0``."""
    _, _, ready_tasks, desired = [sample for sample in result.samples if sample[0] <= at_s][-1]
    return "up" if ready_tasks else "starting" if desired else "0"


def report_seeds(
    by_seed: dict[int, list[Result]],
    period_s: float,
    burst_start_s: float,
    print_: Callable[[str], None] = print,
) -> None:
    """One row per seed: ours against the reference, the issue's p95 target, and where
    the burst found our service (what decides the p95 when the minimum is 0)."""
    print_(
        f"{'seed':>4} {'ours p95 s':>10} {'ref p95 s':>10} {'p95<=half':>9} "
        f"{'ours task-min':>13} {'ref task-min':>12} {'slowest start s':>15} {'wakes':>6} "
        f"{'burst finds':>11}"
    )
    met = 0
    for seed, results in by_seed.items():
        v = verdict(results, period_s)
        by_name = {r.policy: r for r in results}
        met += v.p95_met
        print_(
            f"{seed:>4} {v.ours_p95_s:>10.1f} {v.reference_p95_s:>10.1f} "
            f"{'yes' if v.p95_met else 'no':>9} {by_name['ours'].task_minutes:>13.0f} "
            f"{by_name['reference'].task_minutes:>12.0f} {v.slowest_start_s:>15.0f} "
            f"{by_name['ours'].wakes:>6d} {state_at(by_name['ours'], burst_start_s):>11}"
        )
    print_(f"p95 target met on {met} of {len(by_seed)} seeds")


def parse_seeds(text: str) -> list[int]:
    """``1-7`` or ``1,3,5`` (or both: ``1-3,7``)."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--background-per-hour", type=float, default=10.0)
    parser.add_argument("--burst-products", type=int, default=2000)
    parser.add_argument("--burst-minutes", type=float, default=30.0)
    parser.add_argument("--burst-at-minutes", type=float, default=60.0)
    parser.add_argument("--io-median-seconds", type=float, default=1.0)
    parser.add_argument(
        "--target-per-task", type=int, default=None, help="default: AUTOSCALER_TARGET_PER_TASK's"
    )
    parser.add_argument(
        "--min-tasks", type=int, default=None, help="ours; default: AUTOSCALER_MIN_TASKS's"
    )
    parser.add_argument(
        "--startup-seconds", type=float, default=FARGATE_START_S + HYDROFABRIC_LOAD_S
    )
    parser.add_argument(
        "--seeds", type=parse_seeds, default=None, help="e.g. 1-7: one summary row per seed"
    )
    parser.add_argument("--wake-delay-seconds", type=float, default=WAKE_DELAY_S)
    parser.add_argument(
        "--no-wake", action="store_true", help="ours on its schedule only (no producer wake)"
    )
    args = parser.parse_args(argv)

    config = production_policy()
    if args.target_per_task is not None:
        config = dataclasses.replace(config, target_per_task=args.target_per_task)
    if args.min_tasks is not None:
        config = dataclasses.replace(config, min_tasks=args.min_tasks)
    wake_delay = None if args.no_wake else args.wake_delay_seconds
    print(
        f"ours: target {config.target_per_task}/task, "
        f"tasks {config.min_tasks}..{config.max_tasks}, "
        f"window {config.stabilization_seconds:g} s, step {config.scale_in_step}, every 60 s, "
        + ("no wake" if wake_delay is None else f"woken {wake_delay:g} s after a publish at 0")
    )
    if args.seeds:
        by_seed = {seed: run_policies(args, seed, config, wake_delay) for seed in args.seeds}
        report_seeds(by_seed, Ours.period_s, args.burst_at_minutes * 60)
        return 0
    results = run_policies(args, args.seed, config, wake_delay, describe=True)
    burst = (args.burst_at_minutes, args.burst_at_minutes + args.burst_minutes)
    for result in results:
        print(f"  wrote {plot(result, args.out, burst)}", file=sys.stderr)
    report(results, Ours.period_s)
    return 0


def run_policies(
    args: argparse.Namespace,
    seed: int,
    config: PolicyConfig,
    wake_delay_s: float | None,
    *,
    describe: bool = False,
) -> list[Result]:
    """The three policies against one seed's workload."""
    messages = workload(args, seed)
    if describe:
        services = np.array([m.service_s for m in messages])
        print(
            f"workload: {len(messages)} products over {args.hours:g} h (seed {seed}); "
            f"service time mean {services.mean():.2f} s, "
            f"p95 {np.percentile(services, 95):.2f} s; task start-up {args.startup_seconds:g} s"
        )
    policies: list[tuple[Policy, int]] = [
        (ReferenceStep(config.max_tasks), 1),
        (TargetTracking(config.target_per_task, config.max_tasks), 0),
        (Ours(config, wake_delay_s), config.min_tasks),
    ]
    horizon = args.hours * 3600
    return [
        simulate(policy, messages, horizon, args.startup_seconds, initial)
        for policy, initial in policies
    ]


if __name__ == "__main__":
    sys.exit(main())
