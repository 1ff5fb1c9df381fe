"""The post-processor's flowpath lookup in S3: built once per hydrofabric version.

The lookup (see :mod:`rnr.hydro_io.flowpaths`) lives at
``{POSTPROC_PREFIX}/state/flowpaths/{version}.parquet`` in the output bucket, where
``version`` is derived from the ETags of the hydrofabric objects the ``flowpaths`` layer
comes from. A new hydrofabric in the input bucket has new ETags, so the next run that
needs flowpaths builds a new lookup; every other run reads the existing one in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from rnr.core.errors import ConfigurationError
from rnr.hydro_io.flowpaths import FLOWPATHS_LAYER, build_flowpath_lookup
from rnr.storage.aws_errors import AWS_CALL_ERRORS, error_code
from rnr.storage.hydrofabric_s3 import open_s3_hydrofabric
from rnr.storage.s3 import ObjectStore
from services.postproc.settings import PostprocSettings

logger = logging.getLogger(__name__)


async def hydrofabric_version(store: ObjectStore, settings: PostprocSettings) -> str:
    """A short digest of the ETags of the objects holding the ``flowpaths`` layer."""
    location = settings.hydrofabric_location.strip("/")
    gpkg = location.endswith(".gpkg")
    prefix = location if gpkg else f"{location}/{FLOWPATHS_LAYER}.parquet"
    objects = [
        info
        for info in await store.list_objects(settings.input_bucket, prefix)
        if info.key == prefix or info.key.startswith(f"{prefix}/")
    ]
    if not objects:
        raise ConfigurationError(
            f"no flowpaths at s3://{settings.input_bucket}/{prefix}; set HYDROFABRIC_LOCATION "
            "to a .gpkg key or a prefix holding flowpaths.parquet"
        )
    digest = hashlib.sha256()
    for info in sorted(objects, key=lambda info: info.key):
        digest.update(f"{info.key}\0{info.etag}\n".encode())
    return digest.hexdigest()[:16]


async def ensure_flowpath_lookup(s3: Any, store: ObjectStore, settings: PostprocSettings) -> str:
    """The key of the current lookup in the output bucket, built first if missing."""
    version = await hydrofabric_version(store, settings)
    key = f"{settings.postproc_prefix}/state/flowpaths/{version}.parquet"
    try:
        await s3.head_object(Bucket=settings.output_bucket, Key=key)
        return key
    except AWS_CALL_ERRORS as error:
        if error_code(error) not in {"404", "NoSuchKey", "NotFound"}:
            raise
    started = time.perf_counter()
    logger.info(
        "building the flowpath lookup (once per hydrofabric version)",
        extra={"location": settings.hydrofabric_location, "key": key},
    )
    reader = await open_s3_hydrofabric(s3, settings)
    try:
        data = await asyncio.to_thread(build_flowpath_lookup, reader)
    finally:
        reader.close()
    await store.put_bytes(settings.output_bucket, key, data)
    logger.info(
        "flowpath lookup built",
        extra={
            "key": key,
            "bytes": len(data),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return key
