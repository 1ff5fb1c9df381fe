"""Waking the autoscaler: an asynchronous Lambda invoke after a run that published.

The autoscaler runs every 60 s on its schedule. When the worker service is at zero
tasks, products published just after a run wait for the next one before a task is even
asked for, then for the task to start (about a minute on Fargate). The producer knows
when work has just arrived, so it asks the autoscaler to decide now: an ``Event``
(asynchronous) invoke, which returns as soon as Lambda has queued the event.

A wake is an optimisation, never a duty: the schedule catches up within one period, so
a failed invoke is logged and counted and the producer's run still succeeds. The event
names its source, which the autoscaler copies into its decision record as ``trigger``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from rnr.storage.aws import AwsClients

logger = logging.getLogger(__name__)

WAKE_SOURCE = "producer"

# Give up quickly: two attempts in all and short timeouts. A stuck Lambda endpoint must
# not hold the producer's run through the shared client's six attempts (botocore's
# ``max_attempts`` counts retries; ``total_max_attempts`` counts the first call too);
# the schedule is the fallback.
WAKE_CLIENT_CONFIG: dict[str, Any] = {
    "retries": {"total_max_attempts": 2, "mode": "standard"},
    "connect_timeout": 2,
    "read_timeout": 5,
}


def wake_payload(published: int) -> bytes:
    """The event the autoscaler receives: ``{"source":"producer","published":N}``."""
    return json.dumps(
        {"source": WAKE_SOURCE, "published": published}, separators=(",", ":")
    ).encode()


def trigger_of(event: Mapping[str, Any]) -> Literal["schedule", "producer"]:
    """What started an autoscaler run: a producer's wake, or else its schedule (whose
    event says ``eventbridge-scheduler``; the local scheduler sends none)."""
    return "producer" if event.get("source") == WAKE_SOURCE else "schedule"


async def wake_autoscaler(aws: AwsClients, function_name: str, published: int) -> bool:
    """Invoke the autoscaler asynchronously; True when Lambda accepted the event.

    Never raises: any failure (refused, throttled beyond the retry, unreachable) is
    logged as a warning and returned as False for the caller to count.
    """
    try:
        async with aws.client("lambda", **WAKE_CLIENT_CONFIG) as client:
            answer = await client.invoke(
                FunctionName=function_name,
                InvocationType="Event",
                Payload=wake_payload(published),
            )
        status = answer.get("StatusCode")
        if status != 202:
            raise RuntimeError(f"Lambda answered {status} to an Event invoke, not 202")
    except Exception as exc:
        logger.warning(
            "could not wake the autoscaler; its schedule runs it within a minute",
            extra={
                "function_name": function_name,
                "reason": str(exc),
                "error_type": type(exc).__name__,
            },
        )
        return False
    logger.info("autoscaler woken", extra={"function_name": function_name, "published": published})
    return True
