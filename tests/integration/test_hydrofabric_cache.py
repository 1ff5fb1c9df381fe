"""Fetching the hydrofabric from S3 (moto server) into the local cache."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aioboto3
import boto3
import pytest

from rnr.core.errors import ConfigurationError
from rnr.storage.hydrofabric_cache import fetch_hydrofabric


@pytest.fixture
def s3(moto_endpoint: str):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


async def fetch(moto_endpoint: str, bucket: str, location: str, cache: Path) -> Path:
    session = aioboto3.Session(region_name="us-east-1")
    async with session.client("s3", endpoint_url=moto_endpoint) as client:
        return await fetch_hydrofabric(client, bucket, location, cache)


async def test_geopackage_is_downloaded_once_per_version(
    s3, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="hf/conus.gpkg", Body=b"version one")
    path = await fetch(moto_endpoint, bucket, "hf/conus.gpkg", tmp_path)
    assert path.read_bytes() == b"version one"
    stamp = path.stat().st_mtime_ns
    assert await fetch(moto_endpoint, bucket, "hf/conus.gpkg", tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # cached: not written again

    s3.put_object(Bucket=bucket, Key="hf/conus.gpkg", Body=b"version two")
    assert (await fetch(moto_endpoint, bucket, "hf/conus.gpkg", tmp_path)).read_bytes() == (
        b"version two"
    )
    assert not [p for p in path.parent.iterdir() if p.suffix == ".partial"]


async def test_parquet_prefix_becomes_a_folder_of_layers(
    s3, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    for layer in ("flowpaths", "network", "nexus"):
        s3.put_object(Bucket=bucket, Key=f"hf/v2.2/{layer}.parquet", Body=layer.encode())
    s3.put_object(Bucket=bucket, Key="hf/v2.2/README.txt", Body=b"not a layer")
    folder = await fetch(moto_endpoint, bucket, "hf/v2.2", tmp_path)
    assert sorted(p.name for p in folder.glob("*.parquet")) == [
        "flowpaths.parquet",
        "network.parquet",
        "nexus.parquet",
    ]


async def test_missing_hydrofabric_is_a_configuration_error_naming_it(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="HYDROFABRIC_LOCATION"):
        await fetch(moto_endpoint, bucket, "nowhere/conus.gpkg", tmp_path)
    with pytest.raises(ConfigurationError, match=r"no <layer>\.parquet objects"):
        await fetch(moto_endpoint, bucket, "nowhere", tmp_path)


async def test_two_workers_sharing_a_cache_can_download_at_once(
    s3, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """Each download writes its own partial file: neither renames the other's away."""
    body = b"x" * (3 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="hf/conus.gpkg", Body=body)
    paths = await asyncio.gather(
        *(fetch(moto_endpoint, bucket, "hf/conus.gpkg", tmp_path) for _ in range(4))
    )
    assert {path.read_bytes() == body for path in paths} == {True}
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
    assert not leftovers
