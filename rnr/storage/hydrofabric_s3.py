"""A hydrofabric reader straight on the input bucket, for callers that read a few rows.

The worker copies the whole hydrofabric to disk once and indexes it; the post-processor
joins a few hundred flowpaths per run and must not pull a national layer each time. A
Parquet hydrofabric is read in place with ranged GETs (pyarrow's S3 filesystem reads
footers, then only the row groups the id filter keeps). SQLite cannot read over
ranges, so a GeoPackage is copied to the local cache once per ETag, as for the worker;
in Lambda that copy survives across warm invocations in ``/tmp``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from rnr.core.settings import HydrofabricSettings
from rnr.hydro_io.hydrofabric import GeoPackageReader, HydrofabricReader, ParquetReader
from rnr.storage.hydrofabric_cache import fetch_hydrofabric


def s3_filesystem(region: str, endpoint_url: str | None) -> pafs.S3FileSystem:
    """pyarrow's S3 client, pointed at ``AWS_ENDPOINT_URL`` when one is set (an emulator).

    Credentials come from the same default chain as boto3's (environment, the Lambda
    or task role).
    """
    if not endpoint_url:
        return pafs.S3FileSystem(region=region)
    endpoint = urlsplit(endpoint_url)
    return pafs.S3FileSystem(
        region=region,
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme or "https",
    )


async def open_s3_hydrofabric(s3_client: Any, settings: HydrofabricSettings) -> HydrofabricReader:
    """A reader of ``s3://INPUT_BUCKET/HYDROFABRIC_LOCATION``.

    Raises ``FileNotFoundError`` when a Parquet prefix holds no folder of layers, and
    ``ConfigurationError`` when a GeoPackage key cannot be read.
    """
    location = settings.hydrofabric_location
    if location.endswith(".gpkg"):
        path = await fetch_hydrofabric(
            s3_client, settings.input_bucket, location, settings.hydrofabric_cache_dir
        )
        return GeoPackageReader(path)
    filesystem = s3_filesystem(settings.aws_region, settings.aws_endpoint_url)
    root = f"{settings.input_bucket}/{location.strip('/')}"
    # The constructor lists the prefix: blocking network I/O, kept off the event loop.
    return await asyncio.to_thread(ParquetReader, root, filesystem)
