"""The worker's per-product processing against the replay server, moto and the sample
hydrofabric: one bad gauge costs only itself, hostile ids never reach a key, a
complete product is not routed twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from devstack import SAMPLE_HYDROFABRIC
from rnr.hydro.hml import extract_lids
from rnr.hydro.segments import NetworkIndex, Segment
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric
from rnr.messaging.consumer import Handled
from services.worker.processing import GaugesFailed
from tests.conftest import Replay
from tests.support.messages import product_message
from tests.support.processing import PREFIX, Worker, processor_for

# A fixture product with a routable moderate gauge, an action gauge and one not flooding.
PRODUCT_ID = "508e35f6-a6ee-5cea-9361-6f4b79520bda"


@pytest.fixture(scope="module")
def network() -> NetworkIndex:
    with open_hydrofabric(SAMPLE_HYDROFABRIC / "parquet") as reader:
        return NetworkIndex.from_reader(reader, attributes_layer(reader))


@pytest.fixture
async def worker(
    replay: Replay, moto_endpoint: str, bucket: str, network: NetworkIndex
) -> AsyncIterator[Worker]:
    async with processor_for(replay, moto_endpoint, bucket, network) as worker:
        yield worker


def outcomes(record: dict) -> dict[str, tuple[str, str]]:
    return {g["lid"]: (g["outcome"], g.get("reason", "")) for g in record["gauges"]}


def single_point_forecast(replay: Replay, lid: str) -> None:
    series = {
        "secondaryUnits": "kcfs",
        "data": [{"validTime": "2025-05-05T21:00:00Z", "secondary": 40.0}],
    }
    replay.fault(f"^/nwps/v1/gauges/{lid}/stageflow/forecast$", status=200, body=json.dumps(series))


async def test_the_fixture_product_routes_its_flooding_gauges(worker: Worker) -> None:
    product = product_message(PRODUCT_ID)
    assert await worker.process(product) is Handled.PROCESSED
    record = await worker.record(product)
    assert outcomes(record)["HPDT2"][0] == "routed"
    assert outcomes(record)["GDLT2"] == ("skipped", "not_flooding")
    assert record["complete"] is True


async def test_one_malformed_gauge_costs_only_itself(replay: Replay, worker: Worker) -> None:
    product = product_message(PRODUCT_ID)
    single_point_forecast(replay, "TRKT2")
    assert await worker.process(product) is Handled.PROCESSED
    record = await worker.record(product)
    gauges = outcomes(record)
    assert set(gauges) == {"HPDT2", "TRKT2", "GDLT2"}
    assert gauges["HPDT2"][0] == "routed"
    assert gauges["TRKT2"][0] == "skipped"
    assert gauges["TRKT2"][1].startswith("invalid_data: forecast has 1 valid flow value")
    assert any(key.startswith(f"{PREFIX}/HPDT2/") for key in await worker.keys())
    assert not any("/TRKT2/" in key for key in await worker.keys())
    assert worker.gauges("skipped", "invalid_data") == 1


@pytest.mark.parametrize("hostile", ["../ESCAPED", "..", "HPDT2/../../x", "hpdt2\u0000"])
async def test_an_nwps_answer_naming_another_gauge_never_reaches_a_key(
    replay: Replay, worker: Worker, hostile: str
) -> None:
    async with httpx.AsyncClient() as client:
        answer = (await client.get(f"{replay.nwps_api_url}/gauges/HPDT2")).json()
    replay.fault("^/nwps/v1/gauges/HPDT2$", status=200, body=json.dumps({**answer, "lid": hostile}))
    product = product_message(PRODUCT_ID)
    await worker.process(product)
    gauges = outcomes(await worker.record(product))
    assert gauges["HPDT2"][0] == "skipped"
    assert gauges["HPDT2"][1].startswith("invalid_data: NWPS answered for gauge")
    assert all(".." not in key and "ESCAPED" not in key for key in await worker.keys())


async def test_a_site_id_that_is_a_path_is_recorded_and_skipped(
    replay: Replay, worker: Worker
) -> None:
    text = replay.product(PRODUCT_ID)["productText"].replace('id="GDLT2"', 'id="../ESCAPED"')
    replay.fault(
        f"^/products/{PRODUCT_ID}$",
        status=200,
        body=json.dumps({**replay.product(PRODUCT_ID), "productText": text}),
    )
    product = product_message(PRODUCT_ID)
    assert await worker.process(product) is Handled.PROCESSED
    record = await worker.record(product)
    assert record["lids"] == extract_lids(text).lids == ["HPDT2", "TRKT2"]
    gauges = outcomes(record)
    assert gauges["../ESCAPED"][0] == "skipped"
    assert "not an NWS location id" in gauges["../ESCAPED"][1]
    assert all(".." not in key for key in await worker.keys())


async def test_a_garbled_nwps_answer_retries_then_is_invalid_data_on_the_last_attempt(
    replay: Replay, worker: Worker
) -> None:
    replay.fault("^/nwps/v1/gauges/TRKT2$", status=200, body="<html>Service busy</html>")
    product = product_message(PRODUCT_ID)
    with pytest.raises(GaugesFailed, match="TRKT2"):
        await worker.process(product, attempt=1)
    record = await worker.record(product)
    assert outcomes(record)["TRKT2"][0] == "failed"
    assert record["complete"] is False
    assert outcomes(record)["HPDT2"][0] == "routed"  # written already, overwritten later

    assert await worker.process(product, attempt=3) is Handled.PROCESSED
    record = await worker.record(product)
    assert outcomes(record)["TRKT2"][0] == "skipped"
    assert outcomes(record)["TRKT2"][1].startswith("invalid_data: NWPS answers stayed garbled")
    assert record["complete"] is True


async def test_a_complete_product_is_acked_as_a_duplicate_without_routing(
    replay: Replay, worker: Worker
) -> None:
    product = product_message(PRODUCT_ID)
    assert await worker.process(product) is Handled.PROCESSED
    before = replay.requests()
    assert await worker.process(product) is Handled.DUPLICATE
    assert replay.requests() == before  # not even the product text was fetched again


async def test_an_incomplete_record_or_another_issuance_is_processed_again(
    replay: Replay, worker: Worker
) -> None:
    replay.fault("^/nwps/v1/gauges/TRKT2$", status=503, times=2)
    product = product_message(PRODUCT_ID)
    with pytest.raises(GaugesFailed):
        await worker.process(product)
    assert await worker.process(product) is Handled.PROCESSED  # the record had a failure
    reissued = product.model_copy(update={"issuing_office": "KORN"})
    assert await worker.process(reissued) is Handled.PROCESSED


class _BuggyNetwork:
    """A hydrofabric index with a bug for one reach: what the worker must survive."""

    def __init__(self, network: NetworkIndex, broken_reach: str) -> None:
        self._network = network
        self._broken_reach = broken_reach

    def extract_segment(self, reach_id: str) -> Segment:
        if reach_id == self._broken_reach:
            raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")
        return self._network.extract_segment(reach_id)


async def test_a_bug_at_one_gauge_lets_the_others_finish_then_surfaces(
    replay: Replay, moto_endpoint: str, bucket: str, network: NetworkIndex
) -> None:
    buggy = _BuggyNetwork(network, "1479611")  # TRKT2's reach
    product = product_message(PRODUCT_ID)
    async with processor_for(replay, moto_endpoint, bucket, buggy) as worker:  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="NoneType"):
            await worker.process(product)
        record = await worker.record(product)
    gauges = outcomes(record)
    assert gauges["HPDT2"][0] == "routed"
    assert gauges["TRKT2"] == (
        "failed",
        "bug: TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'",
    )
    assert record["complete"] is False
    assert worker.gauges("failed", "bug") == 1
