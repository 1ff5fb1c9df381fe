"""The post-processor against S3 (moto server): checkpoint, quarantine, merging, no-ops."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from typing import Any

import boto3
import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import shapely
from prometheus_client import CollectorRegistry

from rnr.hydro.inherited import CFS_PER_CMS
from rnr.hydro.muskingum_cunge import RoutingResult
from rnr.hydro_io.netcdf import write_forecast_netcdf
from rnr.storage.output_layout import output_key
from services.postproc import postproc
from services.postproc.settings import PostprocSettings
from tests.support.forecasts import GAUGES, HPDT2_ATTRIBUTES, forecast_file, sample_segment

NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
T_OLD = NOW - dt.timedelta(hours=6)
T_NEW = NOW - dt.timedelta(hours=1)


class Postproc:
    """The post-processor's state and a plain S3 client on the test bucket."""

    def __init__(self, bucket: str, endpoint: str, location: str, **settings: Any) -> None:
        self.bucket = bucket
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.settings = PostprocSettings(
            output_bucket=bucket,
            input_bucket=bucket,
            hydrofabric_location=location,
            aws_endpoint_url=endpoint,
            **settings,
        )
        self.restart()

    def restart(self) -> None:
        """A cold start: nothing kept in memory from earlier runs."""
        self.state = postproc.setup(self.settings, CollectorRegistry())

    async def run(self) -> dict[str, Any]:
        return await postproc.run(self.state, {})

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def keys(self, prefix: str = "postprocess/") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def latest(self) -> list[dict[str, Any]]:
        table = pq.read_table(
            io.BytesIO(self.get(postproc.TableKeys("postprocess").latest("parquet")))
        )
        return table.to_pylist()


@pytest.fixture
def pp(bucket: str, moto_endpoint: str, sample_hydrofabric: str) -> Postproc:
    return Postproc(bucket, moto_endpoint, sample_hydrofabric)


def feature_ids(lid: str) -> list[int]:
    return [int(i.removeprefix("wb-")) for i in sample_segment(GAUGES[lid]).flowpath_ids]


async def test_an_empty_run_writes_nothing(pp: Postproc) -> None:
    summary = await pp.run()
    assert summary["listed"] == 0 and summary["written"] is False
    assert pp.keys() == []


async def test_a_product_record_is_not_a_forecast_and_a_bad_one_withdraws_nothing(
    pp: Postproc,
) -> None:
    pp.put("replace_and_route/products/2025/05/05/p.json", b"{}")
    summary = await pp.run()
    assert (summary["listed"], summary["records_read"], summary["written"]) == (0, 1, False)
    assert pp.keys("postprocess/latest/") == []


@pytest.mark.parametrize("location", ["parquet", "gpkg"])
async def test_forecasts_become_the_table_once(
    bucket: str, moto_endpoint: str, sample_hydrofabric: str, location: str
) -> None:
    if location == "gpkg":
        sample_hydrofabric = sample_hydrofabric.rsplit("/", 1)[0] + "/hydrofabric.gpkg"
    pp = Postproc(bucket, moto_endpoint, sample_hydrofabric)
    for lid in ("HPDT2", "TRKT2"):
        pp.put(*forecast_file(lid, t0=T_NEW))

    summary = await pp.run()
    assert summary["processed"] == 2 and summary["quarantined"] == 0 and summary["written"]
    rows = pp.latest()
    # One row per segment, where the two gauges' segments overlap too.
    assert sorted(row["feature_id"] for row in rows) == sorted(
        set(feature_ids("HPDT2")) | set(feature_ids("TRKT2"))
    )
    assert {row["rfc_location"] for row in rows} == {"HPDT2", "TRKT2"}
    assert all(shapely.from_wkb(row["geometry"]).geom_type == "LineString" for row in rows)
    history = pp.keys("postprocess/history/")
    assert {key.rsplit(".", 1)[1] for key in history} == {"csv", "parquet"}
    assert len(history) == 2
    csv_rows = pa_csv.read_csv(io.BytesIO(pp.get("postprocess/latest/inherited_rfc_forecasts.csv")))
    assert csv_rows.num_rows == len(rows)

    # A second run, and one after a cold start: nothing new, nothing written.
    again = await pp.run()
    assert (again["pending"], again["written"]) == (0, False)
    pp.restart()
    assert (await pp.run())["pending"] == 0
    assert len(pp.keys("postprocess/history/")) == 2


async def test_a_corrupt_file_is_quarantined_and_the_rest_processed(pp: Postproc) -> None:
    pp.put(*forecast_file("HPDT2", t0=T_NEW))
    broken_key = output_key("replace_and_route", "TRKT2", T_NEW)
    pp.put(broken_key, b"\x89HDF\r\n\x1a\n truncated by a failed upload")

    summary = await pp.run()
    assert (summary["processed"], summary["quarantined"]) == (1, 1)
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2"}
    copy = f"postprocess/quarantine/{broken_key}"
    assert pp.get(copy).startswith(b"\x89HDF")
    reason = json.loads(pp.get(f"{copy}.reason.json"))
    assert reason["key"] == broken_key and "not a NetCDF file" in reason["reason"]
    assert pp.get(broken_key)  # the original stays where the worker wrote it

    # Quarantined once is not retried every run; a rewrite by the worker is taken in.
    assert (await pp.run())["pending"] == 0
    pp.put(*forecast_file("TRKT2", t0=T_NEW))
    summary = await pp.run()
    assert (summary["processed"], summary["quarantined"]) == (1, 0)
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2", "TRKT2"}


async def test_segments_unknown_to_the_hydrofabric_are_quarantined(pp: Postproc) -> None:
    flow = np.full((24, 2), 5.0, np.float32)
    attributes = dataclasses.replace(
        HPDT2_ATTRIBUTES, rfc_location="XXXX1", rfc_reach_id="1", issuance_time=T_NEW
    )
    data = write_forecast_netcdf(
        RoutingResult(flow, flow, flow),
        feature_ids=["wb-999999991", "wb-999999992"],
        t0=T_NEW,
        dt_s=300.0,
        attributes=attributes,
    )
    key = output_key("replace_and_route", "XXXX1", T_NEW)
    pp.put(key, data)
    summary = await pp.run()
    assert summary["quarantined"] == 1
    reason = json.loads(pp.get(f"postprocess/quarantine/{key}.reason.json"))["reason"]
    assert "2 of 2 segments are not in the flowpaths layer" in reason


async def test_a_gauges_newest_issuance_wins_across_runs(pp: Postproc) -> None:
    pp.put(*forecast_file("HPDT2", t0=T_OLD, peak_m3_s=900.0, product_id="old"))
    await pp.run()
    assert {row["product_id"] for row in pp.latest()} == {"old"}

    pp.restart()
    pp.put(*forecast_file("HPDT2", t0=T_NEW, peak_m3_s=100.0, product_id="new"))
    summary = await pp.run()
    assert (summary["pending"], summary["processed"]) == (1, 1)  # the checkpoint held
    rows = pp.latest()
    assert {row["product_id"] for row in rows} == {"new"}
    assert len(rows) == len(feature_ids("HPDT2"))
    # The newer forecast's lower peak replaces the older, higher one.
    # (the wave's base flow of 10 m3/s plus its peak of 100 at the gauge segment)
    assert max(row["streamflow_cfs"] for row in rows) == pytest.approx(110.0 * CFS_PER_CMS)

    # The older forecast processed again (a redelivery rewrote it) does not win back.
    pp.put(*forecast_file("HPDT2", t0=T_OLD, peak_m3_s=901.0, product_id="old"))
    await pp.run()
    assert {row["product_id"] for row in pp.latest()} == {"new"}


async def test_a_backlog_is_taken_in_over_several_runs(
    bucket: str, moto_endpoint: str, sample_hydrofabric: str
) -> None:
    pp = Postproc(bucket, moto_endpoint, sample_hydrofabric, postproc_max_objects_per_run=1)
    for lid in ("HPDT2", "TRKT2", "PRLL1"):
        pp.put(*forecast_file(lid, t0=T_NEW))
    first = await pp.run()
    assert (first["processed"], first["deferred"]) == (1, 2)
    second = await pp.run()
    assert (second["processed"], second["deferred"]) == (1, 1)
    third = await pp.run()
    assert (third["processed"], third["deferred"]) == (1, 0)
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2", "TRKT2", "PRLL1"}


async def test_forecasts_past_the_maximum_age_leave_the_table(
    bucket: str, moto_endpoint: str, sample_hydrofabric: str
) -> None:
    pp = Postproc(bucket, moto_endpoint, sample_hydrofabric, postproc_max_forecast_age_hours=5)
    pp.put(*forecast_file("HPDT2", t0=T_NEW))
    pp.put(*forecast_file("PRLL1", t0=T_OLD))
    summary = await pp.run()
    assert summary["expired_rows"] == len(feature_ids("PRLL1"))
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2"}


async def test_the_flowpath_lookup_is_built_once_per_hydrofabric_version(
    pp: Postproc, sample_hydrofabric: str
) -> None:
    pp.put(*forecast_file("HPDT2", t0=T_OLD))
    await pp.run()
    lookups = pp.keys("postprocess/state/flowpaths/")
    assert len(lookups) == 1

    pp.put(*forecast_file("PRLL1", t0=T_NEW))
    await pp.run()
    assert pp.keys("postprocess/state/flowpaths/") == lookups  # reused, not rebuilt

    # A new flowpaths object (same rows, other bytes: a new ETag) is a new version.
    key = f"{sample_hydrofabric}/flowpaths.parquet"
    table = pq.read_table(io.BytesIO(pp.get(key)))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    pp.put(key, sink.getvalue())
    pp.put(*forecast_file("ILRO2", t0=T_NEW))
    summary = await pp.run()
    assert summary["processed"] == 1
    assert len(pp.keys("postprocess/state/flowpaths/")) == 2


def product_record(lid: str, issued: dt.datetime, *, outcome: str, reason: str = "") -> tuple:
    """A worker's product record listing ``lid`` with ``outcome`` (key, bytes)."""
    product_id = f"p-{lid}-{issued:%H%M}"
    gauge = {"lid": lid, "outcome": outcome, **({"reason": reason} if reason else {})}
    record = {
        "schema_version": 2,
        "product_id": product_id,
        "issuance_time": issued.isoformat(),
        "issuing_office": "KFWR",
        "wmo_collective_id": "SRUS54",
        "lids": [lid],
        "complete": True,
        "gauges": [gauge],
    }
    key = f"replace_and_route/products/{issued:%Y/%m/%d}/{product_id}.json"
    return key, json.dumps(record).encode()


def overlap_ids() -> set[int]:
    return set(feature_ids("HPDT2")) & set(feature_ids("TRKT2"))


async def test_overlapping_gauges_give_the_max_flow_and_the_most_severe_status(
    pp: Postproc,
) -> None:
    assert overlap_ids(), "the sample's HPDT2 and TRKT2 segments should overlap"
    pp.put(*forecast_file("HPDT2", t0=T_NEW, peak_m3_s=300.0, max_status="major"))
    pp.put(*forecast_file("TRKT2", t0=T_OLD, peak_m3_s=3000.0, max_status="minor"))
    await pp.run()
    rows = {row["feature_id"]: row for row in pp.latest()}
    for feature_id in overlap_ids():
        row = rows[feature_id]
        # TRKT2's older but larger forecast governs; HPDT2's "major" is the status.
        assert row["rfc_location"] == "TRKT2"
        assert row["max_status"] == "major"
        assert set(row["influencing_lids"].split(",")) == {"HPDT2", "TRKT2"}
        assert row["influencing_lids"].startswith("TRKT2,")
        assert row["inherited_rfc_forecasts"].startswith("TRKT2 @ ")
        assert "HPDT2 @ " in row["inherited_rfc_forecasts"]


async def test_a_gauge_that_stops_flooding_is_withdrawn_in_the_next_run(pp: Postproc) -> None:
    pp.put(*forecast_file("HPDT2", t0=T_OLD))
    pp.put(*forecast_file("PRLL1", t0=T_OLD))
    await pp.run()
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2", "PRLL1"}

    # A newer product's record: HPDT2 was skipped, no longer flooding.
    pp.put(*product_record("HPDT2", T_NEW, outcome="skipped", reason="not_flooding"))
    pp.put(*product_record("PRLL1", T_NEW, outcome="skipped", reason="unknown_gauge"))
    summary = await pp.run()
    assert summary["withdrawn_gauges"] == ["HPDT2"]
    assert summary["withdrawn_rows"] == len(feature_ids("HPDT2"))
    assert {row["rfc_location"] for row in pp.latest()} == {"PRLL1"}
    withdrawn = pp.state.withdrawn_rows._value.get()
    assert withdrawn == len(feature_ids("HPDT2"))

    # The older forecast file rewritten later (a redelivery) does not come back.
    pp.restart()
    pp.put(*forecast_file("HPDT2", t0=T_OLD, peak_m3_s=501.0))
    await pp.run()
    assert {row["rfc_location"] for row in pp.latest()} == {"PRLL1"}
    # A newer forecast that floods again does.
    pp.put(*forecast_file("HPDT2", t0=NOW, issued=T_NEW + dt.timedelta(minutes=5)))
    await pp.run()
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2", "PRLL1"}


async def test_segments_still_rising_at_the_end_are_marked(pp: Postproc) -> None:
    # Segment i peaks at hour 20 + i of a 24-hour forecast: from the fifth on, the wave
    # has not passed when the forecast ends.
    pp.put(*forecast_file("HPDT2", t0=T_NEW, first_peak_hour=20.0))
    await pp.run()
    rows = {row["feature_id"]: row for row in pp.latest()}
    marked = [rows[feature_id]["peak_at_horizon"] for feature_id in feature_ids("HPDT2")]
    # (further down the wave has not even begun by hour 24: flat, so not "rising")
    assert marked[:8] == [False] * 4 + [True] * 4
    last_hour = T_NEW + dt.timedelta(hours=24)
    for feature_id in feature_ids("HPDT2")[4:8]:
        assert rows[feature_id]["peak_time"] == last_hour


async def test_a_checkpoint_from_before_the_contributions_state_reads_everything_again(
    pp: Postproc,
) -> None:
    pp.put(*forecast_file("HPDT2", t0=T_NEW))
    old_checkpoint = {
        "format_version": 1,
        "updated": NOW.isoformat(),
        "objects": {
            output_key("replace_and_route", "HPDT2", T_NEW): {"etag": "x", "outcome": "processed"}
        },
    }
    pp.put("postprocess/state/checkpoint.json", json.dumps(old_checkpoint).encode())
    summary = await pp.run()
    assert summary["processed"] == 1
    assert {row["rfc_location"] for row in pp.latest()} == {"HPDT2"}
