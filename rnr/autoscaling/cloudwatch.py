"""``metric`` mode: BacklogPerTask for an Application Auto Scaling target-tracking policy.

BacklogPerTask = (ready + unacked) / max(running, 1). Dividing by at least one task
keeps the metric equal to the whole backlog when nothing runs, so a target-tracking
policy sees it above target and scales out from zero (the reference divided by the
running count and reported 0 there: it could never start the first task). IAM:
``cloudwatch:PutMetricData``.
"""

from __future__ import annotations

from typing import Any

from rnr.core.errors import TransientError

METRIC_NAME = "BacklogPerTask"


def backlog_per_task(backlog: int, running: int) -> float:
    return backlog / max(running, 1)


async def put_backlog_per_task(
    client: Any, namespace: str, cluster: str, service: str, value: float
) -> None:
    """One datapoint, dimensioned by the ECS service it scales (what the scaling
    policy's customized metric specification names)."""
    from rnr.storage.aws_errors import AWS_CALL_ERRORS

    try:
        await client.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": METRIC_NAME,
                    "Dimensions": [
                        {"Name": "ClusterName", "Value": cluster},
                        {"Name": "ServiceName", "Value": service},
                    ],
                    "Value": value,
                    "Unit": "Count",
                }
            ],
        )
    except AWS_CALL_ERRORS as exc:
        raise TransientError(f"CloudWatch PutMetricData failed: {exc}") from exc
