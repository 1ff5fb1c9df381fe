"""Post-processor run: for now it inventories the worker's outputs.

The inherited-forecast table (peak flows joined with the flowpaths, checkpointed)
is the Replace and Route issue's; this entry point already runs under every runtime
and reports what the worker has written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from rnr.core.metrics import emit_emf
from rnr.core.readiness import ReadinessCheck
from rnr.storage.aws import AwsClients
from rnr.storage.s3 import ObjectStore
from services.postproc.settings import PostprocSettings


@dataclass
class PostprocState:
    settings: PostprocSettings
    aws: AwsClients
    outputs: Gauge


def setup(settings: PostprocSettings, registry: CollectorRegistry) -> PostprocState:
    return PostprocState(
        settings=settings,
        aws=AwsClients(settings),
        outputs=Gauge(
            "rnr_postproc_output_objects", "Output objects seen at the last run", registry=registry
        ),
    )


async def run(state: PostprocState, event: Mapping[str, Any]) -> dict[str, Any]:
    settings = state.settings
    async with state.aws.client("s3") as s3:
        keys = await ObjectStore(s3).list_keys(settings.output_bucket, f"{settings.output_prefix}/")
    state.outputs.set(len(keys))
    emit_emf("postproc", {"OutputObjects": len(keys)})
    return {
        "bucket": settings.output_bucket,
        "prefix": settings.output_prefix,
        "outputs": len(keys),
    }


def checks(state: PostprocState) -> dict[str, ReadinessCheck]:
    async def output_bucket() -> None:
        async with state.aws.client("s3") as s3:
            await s3.head_bucket(Bucket=state.settings.output_bucket)

    return {"output_bucket": output_bucket}
