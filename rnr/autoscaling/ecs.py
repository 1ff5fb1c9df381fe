"""The worker service in ECS: how many tasks it has, and setting how many it should have.

The caller passes an aioboto3 ECS client (``AwsClients.client("ecs")``), so the SDK loads
only in runs that need it. IAM: ``ecs:DescribeServices`` and, in ``direct`` mode,
``ecs:UpdateService`` on the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnr.core.errors import ConfigurationError, TransientError


@dataclass(frozen=True)
class ServiceCounts:
    desired: int
    running: int
    pending: int
    deployment_in_progress: bool


def service_counts(service: dict[str, Any]) -> ServiceCounts:
    """Counts from one ``describe_services`` entry.

    A deployment is in progress while ECS runs more than one deployment (old and new
    task definitions side by side) or the primary one is still rolling out.
    """
    deployments = service.get("deployments") or []
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    return ServiceCounts(
        desired=int(service.get("desiredCount") or 0),
        running=int(service.get("runningCount") or 0),
        pending=int(service.get("pendingCount") or 0),
        deployment_in_progress=len(deployments) > 1 or primary.get("rolloutState") == "IN_PROGRESS",
    )


def _raise_for(exc: Exception, action: str, cluster: str, service: str) -> None:
    from rnr.storage.aws_errors import error_code

    code = error_code(exc)
    if code in {"ClusterNotFoundException", "ServiceNotFoundException", "AccessDeniedException"}:
        raise ConfigurationError(
            f"cannot {action} ECS service {service} in cluster {cluster}: {code}; check "
            "ECS_CLUSTER, ECS_SERVICE and the role's ecs:DescribeServices/ecs:UpdateService"
        ) from exc
    raise TransientError(f"ECS {action} failed: {exc}") from exc


async def describe_service(client: Any, cluster: str, service: str) -> ServiceCounts:
    from rnr.storage.aws_errors import AWS_CALL_ERRORS

    try:
        answer = await client.describe_services(cluster=cluster, services=[service])
    except AWS_CALL_ERRORS as exc:
        _raise_for(exc, "describe", cluster, service)
    services = answer.get("services") or []
    if not services:
        reasons = ", ".join(str(f.get("reason")) for f in answer.get("failures") or [])
        raise ConfigurationError(
            f"ECS service {service} not found in cluster {cluster} ({reasons}); "
            "check ECS_CLUSTER and ECS_SERVICE"
        )
    return service_counts(services[0])


async def set_desired_count(client: Any, cluster: str, service: str, count: int) -> None:
    from rnr.storage.aws_errors import AWS_CALL_ERRORS

    try:
        await client.update_service(cluster=cluster, service=service, desiredCount=count)
    except AWS_CALL_ERRORS as exc:
        _raise_for(exc, "update", cluster, service)
