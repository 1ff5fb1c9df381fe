"""From HML products to the flood map's table: a gauge that stops flooding leaves it.

The worker's real processor on the replay server and moto routes a product whose HPDT2
forecast is moderate; the post-processor puts its segments in the table. A newer
product finds HPDT2 no longer flooding: after one more post-processor run its rows are
gone, and the table read with a GIS library stays in its coordinate system.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import httpx
import pytest
from prometheus_client import CollectorRegistry

from devstack import SAMPLE_HYDROFABRIC
from rnr.hydro.segments import NetworkIndex
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric
from services.postproc import postproc
from services.postproc.settings import PostprocSettings
from tests.conftest import Replay
from tests.support.messages import product_message
from tests.support.processing import PREFIX, processor_for

# The fixture product with HPDT2 (moderate), TRKT2 (action) and GDLT2 (not flooding).
PRODUCT_ID = "508e35f6-a6ee-5cea-9361-6f4b79520bda"


@pytest.fixture(scope="module")
def network() -> NetworkIndex:
    with open_hydrofabric(SAMPLE_HYDROFABRIC / "parquet") as reader:
        return NetworkIndex.from_reader(reader, attributes_layer(reader))


def table(s3, bucket: str) -> list[dict]:
    import geopandas

    key = postproc.TableKeys("postprocess").latest("parquet")
    frame = geopandas.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    assert frame.crs.to_epsg() == 5070
    return frame.to_dict("records")


async def test_a_gauge_going_moderate_to_not_flooding_leaves_the_table_after_one_run(
    replay: Replay,
    moto_endpoint: str,
    bucket: str,
    sample_hydrofabric: str,
    network: NetworkIndex,
) -> None:
    pytest.importorskip("geopandas")
    state = postproc.setup(
        PostprocSettings(
            output_bucket=bucket,
            input_bucket=bucket,
            hydrofabric_location=sample_hydrofabric,
            aws_endpoint_url=moto_endpoint,
            output_prefix=PREFIX,
            # The replay fixtures' forecasts were issued in 2025.
            postproc_max_forecast_age_hours=87600,
        ),
        CollectorRegistry(),
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    first = product_message(PRODUCT_ID)
    async with processor_for(replay, moto_endpoint, bucket, network) as worker:
        await worker.process(first)
        await postproc.run(state, {})
        before = table(s3, bucket)
        # TRKT2 lies on HPDT2's main stem: its segments show both, HPDT2 governing.
        assert {row["rfc_location"] for row in before} == {"HPDT2"}
        trkt2 = {row["feature_id"] for row in before if "TRKT2" in row["influencing_lids"]}
        assert trkt2

        # Three hours later the RFC's new forecast for HPDT2 no longer floods.
        async with httpx.AsyncClient() as client:
            gauge = (await client.get(f"{replay.nwps_api_url}/gauges/HPDT2")).json()
        gauge["status"]["forecast"]["floodCategory"] = "no_flooding"
        replay.fault("^/nwps/v1/gauges/HPDT2$", status=200, body=json.dumps(gauge))
        second = first.model_copy(
            update={
                "id": "d00d0000-0000-4000-8000-000000000001",
                "issuance_time": first.issuance_time + dt.timedelta(hours=3),
            }
        )
        replay.fault(
            f"^/products/{second.id}$",
            status=200,
            body=json.dumps(replay.product(PRODUCT_ID) | {"id": second.id}),
        )
        await worker.process(second)
        record = await worker.record(second)
        assert {"lid": "HPDT2", "outcome": "skipped", "reason": "not_flooding"} in record["gauges"]

    summary = await postproc.run(state, {})
    assert summary["withdrawn_gauges"] == ["HPDT2"]
    assert summary["withdrawn_rows"] > 0
    after = table(s3, bucket)
    assert "HPDT2" not in {row["rfc_location"] for row in after}
    assert all("HPDT2" not in row["influencing_lids"].split(",") for row in after)
    # What remains is TRKT2's own forecast, on its own segments.
    assert {row["rfc_location"] for row in after} == {"TRKT2"}
    assert {row["feature_id"] for row in after} == trkt2
