"""The network index artifact in the bucket (moto server): a worker's start-up builds
and uploads it when missing, downloads it when another task made it, uses its local copy
when cached, and rebuilds (and replaces) one that is stale or corrupt; the operators'
``index build`` and ``index status``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import aioboto3
import boto3
import pytest

from devstack.local.bootstrap import SAMPLE_HYDROFABRIC_LOCATION
from rnr.hydro_io.index_artifact import MANIFEST_NAME, Manifest
from rnr.ops import index as ops_index
from rnr.storage.hydrofabric_cache import fetch_hydrofabric
from rnr.storage.index_artifact_s3 import index_prefix, load_network_index

LAYER = "flowpath-attributes-ml"


@pytest.fixture
def s3(moto_endpoint: str):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


async def start_up(moto_endpoint: str, bucket: str, location: str, cache: Path):
    """What the worker does at start-up: copy the hydrofabric, then load its index."""
    session = aioboto3.Session(region_name="us-east-1")
    async with session.client("s3", endpoint_url=moto_endpoint) as client:
        local = await fetch_hydrofabric(client, bucket, location, cache)
        return await load_network_index(client, bucket, location, local, LAYER, cache)


def artifact_keys(s3, bucket: str) -> list[str]:
    prefix = index_prefix(SAMPLE_HYDROFABRIC_LOCATION, LAYER)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def bucket_manifest(s3, bucket: str) -> Manifest:
    key = f"{index_prefix(SAMPLE_HYDROFABRIC_LOCATION, LAYER)}/{MANIFEST_NAME}"
    return Manifest.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def reasons(caplog: pytest.LogCaptureFixture) -> str:
    """The ``reason`` fields of the captured log lines (JSON context, not the message)."""
    return " ".join(str(getattr(record, "reason", "")) for record in caplog.records)


def test_the_artifact_lives_beside_the_hydrofabric() -> None:
    assert index_prefix("hydrofabric/v2.2/conus", LAYER) == (
        f"hydrofabric/v2.2/index/v1/conus/{LAYER}"
    )
    assert index_prefix("conus.gpkg", "flowpath-attributes") == (
        "index/v1/conus.gpkg/flowpath-attributes"
    )


async def test_missing_then_built_uploaded_downloaded_and_cached(
    s3, moto_endpoint: str, bucket: str, sample_hydrofabric: str, tmp_path: Path
) -> None:
    first = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-1")
    assert first.outcome == "built"
    keys = artifact_keys(s3, bucket)
    manifest = bucket_manifest(s3, bucket)
    assert manifest.fingerprint == first.fingerprint
    assert len(keys) == len(manifest.files) + 1  # every array file, and the manifest
    assert all(f"/{first.fingerprint}/" in key for key in keys if not key.endswith("json"))

    second = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-2")
    assert second.outcome == "downloaded" and second.fingerprint == first.fingerprint
    third = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-2")
    assert third.outcome == "cached"
    for loaded in (first, second, third):
        assert loaded.index.extract_segment("3121538").size == 13
    assert artifact_keys(s3, bucket) == keys  # nothing uploaded again


async def test_a_new_hydrofabric_version_makes_the_artifact_stale_and_replaced(
    s3,
    moto_endpoint: str,
    bucket: str,
    sample_hydrofabric: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-1")
    key = f"{sample_hydrofabric}/lakes.parquet"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body + b"")  # same bytes: same ETag
    same = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-1")
    assert (same.outcome, same.fingerprint) == ("cached", old.fingerprint)

    import pyarrow.parquet as pq

    from tests.unit.test_index_artifact import SAMPLE_PARQUET  # the sample, one layer changed

    table = pq.read_table(SAMPLE_PARQUET / "lakes.parquet").slice(0, 0)  # no lakes any more
    pq.write_table(table, tmp_path / "lakes.parquet")
    s3.put_object(Bucket=bucket, Key=key, Body=(tmp_path / "lakes.parquet").read_bytes())
    with caplog.at_level(logging.WARNING):
        new = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-2")
    assert new.outcome == "built" and new.fingerprint != old.fingerprint
    assert "unusable; building a new one" in caplog.text
    assert "another hydrofabric version" in reasons(caplog)
    assert bucket_manifest(s3, bucket).fingerprint == new.fingerprint
    assert new.index.extract_segment("3121538").lake_poi_id is None  # the new version's
    # The stale local copy is gone from the cache the new one went into.
    root = tmp_path / "task-1" / "index" / "v1"
    assert [p.name for p in root.iterdir()] == [old.fingerprint]
    again = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-1")
    assert again.outcome == "downloaded" and [p.name for p in root.iterdir()] == [new.fingerprint]


async def test_a_corrupt_file_in_the_bucket_is_never_used_and_is_replaced(
    s3,
    moto_endpoint: str,
    bucket: str,
    sample_hydrofabric: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    built = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-1")
    victim = next(k for k in artifact_keys(s3, bucket) if k.endswith("fp_down.npy"))
    good = s3.get_object(Bucket=bucket, Key=victim)["Body"].read()
    s3.put_object(Bucket=bucket, Key=victim, Body=good[:-8] + b"\x00" * 8)
    with caplog.at_level(logging.WARNING):
        rebuilt = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task-2")
    assert rebuilt.outcome == "built"
    assert "corrupt; rebuilding" in caplog.text and "checksum" in reasons(caplog)
    assert s3.get_object(Bucket=bucket, Key=victim)["Body"].read() == good
    assert rebuilt.index.extract_segment("3121538").flowpath_ids == (
        built.index.extract_segment("3121538").flowpath_ids
    )


async def test_a_garbled_manifest_in_the_bucket_is_replaced(
    s3, moto_endpoint: str, bucket: str, sample_hydrofabric: str, tmp_path: Path
) -> None:
    key = f"{index_prefix(sample_hydrofabric, LAYER)}/{MANIFEST_NAME}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"not json")
    loaded = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task")
    assert loaded.outcome == "built"
    assert bucket_manifest(s3, bucket).fingerprint == loaded.fingerprint


async def test_a_damaged_local_copy_is_fetched_again(
    s3, moto_endpoint: str, bucket: str, sample_hydrofabric: str, tmp_path: Path
) -> None:
    built = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task")
    (built.folder / "reach_key.npy").write_bytes(b"\x93NUMPY")
    again = await start_up(moto_endpoint, bucket, sample_hydrofabric, tmp_path / "task")
    assert again.outcome == "downloaded"
    assert again.index.extract_segment("3121538").size == 13


# ---------------------------------------------------------------- rnr-ops index


@pytest.fixture
def ops_env(
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    bucket: str,
    sample_hydrofabric: str,
    tmp_path: Path,
):
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "INPUT_BUCKET": bucket,
        "HYDROFABRIC_LOCATION": sample_hydrofabric,
        "HYDROFABRIC_CACHE_DIR": str(tmp_path / "ops-cache"),
    }.items():
        monkeypatch.setenv(name, value)
    assert os.environ["INPUT_BUCKET"] == bucket


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rnr-ops")
    ops_index.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_the_index_command_registers_build_and_status() -> None:
    args = parse("index", "build", "--force", "--json")
    assert args.handler is ops_index.run_build and args.force and args.json
    assert parse("index", "status").handler is ops_index.run_status
    with pytest.raises(SystemExit):
        parse("index")


async def test_index_build_uploads_once_and_status_follows(
    ops_env, s3, bucket: str, moto_endpoint: str, tmp_path: Path, capsys
) -> None:
    assert await ops_index.run_status(parse("index", "status")) == 1
    assert "state=missing" in capsys.readouterr().out
    assert await ops_index.run_build(parse("index", "build", "--json")) == 0
    out = capsys.readouterr()
    assert '"action": "uploaded"' in out.out and '"was": "missing"' in out.out
    assert "building the index" in out.err  # progress goes to stderr
    assert await ops_index.run_build(parse("index", "build")) == 0
    assert "action=none" in capsys.readouterr().out
    assert await ops_index.run_status(parse("index", "status")) == 0
    assert "state=current" in capsys.readouterr().out
    # A worker starting now downloads what the command uploaded.
    loaded = await start_up(moto_endpoint, bucket, SAMPLE_HYDROFABRIC_LOCATION, tmp_path / "w")
    assert loaded.outcome == "downloaded"
