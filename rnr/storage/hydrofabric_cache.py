"""The hydrofabric copied from the input bucket to local disk, once per version.

A national hydrofabric is about a gigabyte: the worker downloads it at start-up into a
cache directory and reads it from there for every message. A sidecar file records the
ETag of each object, so a restart with a warm cache (a persistent volume, or a task
reusing its ephemeral storage) downloads nothing, and a new version in the bucket
replaces the old one.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from rnr.core.errors import ConfigurationError, TransientError
from rnr.storage.aws_errors import AWS_CALL_ERRORS, error_code

logger = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024


async def _download(client: Any, bucket: str, key: str, target: Path) -> None:
    etag_file = target.with_name(target.name + ".etag")
    head = await client.head_object(Bucket=bucket, Key=key)
    etag = head["ETag"].strip('"')
    # Local file checks at start-up, before the consumer runs: blocking is harmless here.
    cached = etag_file.exists() and target.exists()  # noqa: ASYNC240
    if cached and etag_file.read_text() == etag:
        logger.info("hydrofabric object cached", extra={"key": key, "path": str(target)})
        return
    answer = await client.get_object(Bucket=bucket, Key=key)
    written = 0
    # A name of its own: two workers sharing a cache (a persistent volume) may download
    # the same object at once, and each must rename only its own copy.
    with tempfile.NamedTemporaryFile(
        "wb", dir=target.parent, prefix=f"{target.name}.", suffix=".partial", delete=False
    ) as handle:
        partial = Path(handle.name)
        try:
            async for chunk in answer["Body"].iter_chunks(CHUNK_BYTES):
                handle.write(chunk)
                written += len(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)  # noqa: ASYNC240 - start-up only
            raise
    partial.replace(target)  # noqa: ASYNC240 - never half a file under the final name
    etag_file.write_text(etag)
    logger.info(
        "hydrofabric object downloaded",
        extra={"key": key, "path": str(target), "bytes": written},
    )


async def fetch_hydrofabric(client: Any, bucket: str, location: str, cache_dir: Path) -> Path:
    """Copy ``s3://bucket/location`` (a ``.gpkg`` key, or a prefix of ``<layer>.parquet``
    objects) under ``cache_dir``; return the local GeoPackage file or Parquet folder."""
    cache_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - start-up only
    try:
        if location.endswith(".gpkg"):
            target = cache_dir / Path(location).name
            await _download(client, bucket, location, target)
            return target
        prefix = location.rstrip("/") + "/"
        folder = cache_dir / Path(prefix.rstrip("/")).name
        folder.mkdir(parents=True, exist_ok=True)
        keys: list[str] = []
        async for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        layers = [key for key in keys if key.endswith(".parquet")]
        if not layers:
            raise ConfigurationError(
                f"no <layer>.parquet objects under s3://{bucket}/{prefix}; "
                "set HYDROFABRIC_LOCATION to a .gpkg key or a prefix of Parquet layers"
            )
        for key in layers:
            await _download(client, bucket, key, folder / Path(key).name)
        return folder
    except AWS_CALL_ERRORS as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchKey", "NoSuchBucket", "403", "AccessDenied"}:
            raise ConfigurationError(
                f"cannot read the hydrofabric at s3://{bucket}/{location} ({code}); check "
                "INPUT_BUCKET, HYDROFABRIC_LOCATION and the task role's s3:GetObject"
            ) from exc
        raise TransientError(f"S3 failed while fetching the hydrofabric: {exc}") from exc
