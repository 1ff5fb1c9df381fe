"""How the worker spends the seconds between SIGTERM and SIGKILL.

ECS sends SIGKILL ``stopTimeout`` seconds after SIGTERM (30 s on Fargate unless the
task definition says otherwise). Every wait of the stop is carved out of that one
number, in the order they happen, so no combination of them can outlast it:

1. drain: in-flight messages finish (from the signal on: the consumer is cancelled at
   once and ``/readyz`` answers 503 while they do);
2. requeue: messages still running are cancelled and nacked back to the queue;
3. release: ECS task scale-in protection is released;
4. HTTP close: the health server's open connections end;
5. margin: process exit and the last log lines.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUEUE_SECONDS = 2.0
RELEASE_SECONDS = 2.0
HTTP_CLOSE_SECONDS = 1.0
MARGIN_SECONDS = 2.0
RESERVED_SECONDS = REQUEUE_SECONDS + RELEASE_SECONDS + HTTP_CLOSE_SECONDS + MARGIN_SECONDS
# The least stop timeout that leaves a drain of one second.
MIN_STOP_TIMEOUT_SECONDS = RESERVED_SECONDS + 1.0


@dataclass(frozen=True)
class StopBudget:
    drain_seconds: float
    requeue_seconds: float = REQUEUE_SECONDS
    release_seconds: float = RELEASE_SECONDS
    http_close_seconds: float = HTTP_CLOSE_SECONDS
    margin_seconds: float = MARGIN_SECONDS

    @classmethod
    def within(cls, stop_timeout_seconds: float) -> StopBudget:
        """The plan for a task whose SIGKILL comes ``stop_timeout_seconds`` after SIGTERM."""
        if stop_timeout_seconds < MIN_STOP_TIMEOUT_SECONDS:
            raise ValueError(
                f"a stop timeout of {stop_timeout_seconds} s leaves no drain time; "
                f"give at least {MIN_STOP_TIMEOUT_SECONDS:g} s"
            )
        return cls(drain_seconds=stop_timeout_seconds - RESERVED_SECONDS)

    @property
    def total_seconds(self) -> float:
        return (
            self.drain_seconds
            + self.requeue_seconds
            + self.release_seconds
            + self.http_close_seconds
            + self.margin_seconds
        )
