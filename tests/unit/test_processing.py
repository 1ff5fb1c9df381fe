"""ReplaceAndRouteProcessor with in-memory fakes: one test per per-gauge outcome.

The integration tests run the same processor on the replay server and moto; here each
collaborator is a small fake, so every outcome (and the bound on concurrent gauges)
can be set up exactly. The routing and the NetCDF writer are the real ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from rnr.core.errors import PermanentError, TransientError
from rnr.hydro.forecast import RfcForecast, Skipped, SkipReason
from rnr.hydro.segments import ReachNotFound, Segment
from rnr.messaging.consumer import Delivery, Handled
from rnr.storage.output_layout import product_record_key
from rnr.upstream.http import UpstreamGarbled, UpstreamUnavailable
from services.worker.processing import GaugesFailed, ReplaceAndRouteProcessor
from tests.support.forecasts import sample_segment
from tests.support.messages import product_message

PRODUCT = product_message("p-1")
T0 = dt.datetime(2025, 5, 5, 21, tzinfo=dt.UTC)
REACH = "3121538"  # HPDT2's, in the sample hydrofabric


def hml(*site_ids: str) -> str:
    return "".join(f'<?xml version="1.0"?>\n<site id="{site}"/>\n' for site in site_ids)


def forecast(lid: str, flows: tuple[float, ...] = (100.0, 400.0, 200.0)) -> RfcForecast:
    times = tuple(T0 + dt.timedelta(hours=3 * i) for i in range(len(flows)))
    return RfcForecast(
        lid=lid,
        reach_id=REACH,
        flood_category="moderate",
        name="n",
        state="TX",
        t0=times[0],
        valid_times=times,
        flow_m3_s=np.array(flows),
        initial_flow_m3_s=flows[0],
        issued_time=T0,
    )


Answer = RfcForecast | Skipped | Exception | Callable[[], object]


@dataclass
class FakeNws:
    text: str

    async def product_text(self, product_id: str) -> str:
        return self.text


@dataclass
class FakeNwps:
    answers: dict[str, Answer]
    running: int = 0
    most_running: int = 0

    async def rfc_forecast(self, lid: str) -> RfcForecast | Skipped:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(0.01)
            answer = self.answers[lid]
            if isinstance(answer, Exception):
                raise answer
            return answer  # type: ignore[return-value]
        finally:
            self.running -= 1


@dataclass
class FakeNetwork:
    segment: Segment
    broken: set[str] = field(default_factory=set)

    def extract_segment(self, reach_id: str) -> Segment:
        if reach_id in self.broken:
            raise AttributeError("'NoneType' object has no attribute 'size'")
        if reach_id != REACH:
            raise ReachNotFound(reach_id)
        return self.segment


@dataclass
class FakeStore:
    objects: dict[str, bytes] = field(default_factory=dict)

    async def put_bytes(self, bucket: str, key: str, body: bytes, **_: object) -> None:
        self.objects[key] = body

    async def get_bytes_if_exists(self, bucket: str, key: str) -> bytes | None:
        return self.objects.get(key)


@dataclass
class Setup:
    nwps: FakeNwps
    store: FakeStore
    network: FakeNetwork
    registry: CollectorRegistry
    processor: ReplaceAndRouteProcessor

    def record(self, product=PRODUCT) -> dict:
        key = product_record_key("rnr", product.id, product.issuance_time)
        return json.loads(self.store.objects[key])

    def outcomes(self) -> dict[str, tuple[str, str]]:
        return {g["lid"]: (g["outcome"], g.get("reason", "")) for g in self.record()["gauges"]}

    def counted(self, outcome: str, reason: str) -> float:
        labels = {"outcome": outcome, "reason": reason}
        return self.registry.get_sample_value("rnr_worker_gauges_total", labels) or 0.0

    async def run(self, attempt: int = 1, product=PRODUCT) -> Handled:
        return await self.processor(Delivery(product, attempt, max_attempts=3))


def setup(text: str, answers: dict[str, Answer], *, concurrency: int = 4) -> Setup:
    nwps = FakeNwps(answers)
    store = FakeStore()
    network = FakeNetwork(sample_segment(REACH))
    registry = CollectorRegistry()
    processor = ReplaceAndRouteProcessor(
        nws=FakeNws(text),  # type: ignore[arg-type]
        nwps=nwps,  # type: ignore[arg-type]
        network=network,  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        bucket="b",
        prefix="rnr",
        gauge_concurrency=concurrency,
        registry=registry,
    )
    return Setup(nwps, store, network, registry, processor)


async def test_a_routed_gauge_writes_its_file_and_the_record_lists_it() -> None:
    s = setup(hml("HPDT2"), {"HPDT2": forecast("HPDT2")})
    assert await s.run() is Handled.PROCESSED
    assert s.outcomes()["HPDT2"][0] == "routed"
    assert "rnr/HPDT2/troute_output_202505052100.nc" in s.store.objects
    assert s.record()["complete"] is True
    assert s.counted("routed", "") == 1


@pytest.mark.parametrize("reason", [r for r in SkipReason if r is not SkipReason.INVALID_DATA])
async def test_a_skip_is_an_outcome_with_its_reason(reason: SkipReason) -> None:
    s = setup(hml("HPDT2"), {"HPDT2": Skipped("HPDT2", reason, "detail")})
    assert await s.run() is Handled.PROCESSED
    assert s.outcomes() == {"HPDT2": ("skipped", reason.value)}
    assert s.counted("skipped", reason.value) == 1


async def test_a_reach_not_in_the_hydrofabric_is_skipped() -> None:
    gauge = forecast("HPDT2")
    s = setup(hml("HPDT2"), {"HPDT2": RfcForecast(**{**vars(gauge), "reach_id": "42"})})
    await s.run()
    assert s.outcomes() == {"HPDT2": ("skipped", "reach_not_in_hydrofabric")}


async def test_invalid_data_is_skipped_with_its_detail() -> None:
    s = setup(hml("HPDT2"), {"HPDT2": Skipped("HPDT2", SkipReason.INVALID_DATA, "one value")})
    await s.run()
    assert s.outcomes() == {"HPDT2": ("skipped", "invalid_data: one value")}
    assert s.counted("skipped", "invalid_data") == 1


# numpy warns when 1e39 becomes float32 infinity: that is the case under test.
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    # (the last value of a forecast is never routed: each value holds until the next)
    "flows",
    [(float("inf"), 1.0), (1e39, 5.0)],
    ids=["infinite", "overflows-float32"],
)
async def test_a_forecast_the_writer_refuses_is_invalid_data_not_a_crash(flows) -> None:
    s = setup(
        hml("HPDT2", "BAWT2"), {"HPDT2": forecast("HPDT2", flows), "BAWT2": forecast("BAWT2")}
    )
    assert await s.run() is Handled.PROCESSED
    outcome, reason = s.outcomes()["HPDT2"]
    assert (outcome, reason.split(":")[0]) == ("skipped", "invalid_data")
    assert "cannot be routed" in reason
    assert s.outcomes()["BAWT2"][0] == "routed"


async def test_a_permanent_upstream_error_is_invalid_data() -> None:
    s = setup(hml("HPDT2"), {"HPDT2": PermanentError("NWPS answered 400")})
    await s.run()
    assert s.outcomes() == {"HPDT2": ("skipped", "invalid_data: NWPS answered 400")}


async def test_a_transient_failure_retries_the_product_after_the_others_are_written() -> None:
    answers = {"HPDT2": forecast("HPDT2"), "BAWT2": UpstreamUnavailable("HTTP 503")}
    s = setup(hml("HPDT2", "BAWT2"), answers)
    with pytest.raises(GaugesFailed, match="BAWT2: HTTP 503"):
        await s.run()
    assert s.outcomes() == {"HPDT2": ("routed", ""), "BAWT2": ("failed", "HTTP 503")}
    assert s.record()["complete"] is False
    assert s.counted("failed", "transient") == 1


@pytest.mark.parametrize(("attempt", "outcome"), [(1, "failed"), (2, "failed"), (3, "skipped")])
async def test_a_garbled_answer_is_transient_until_the_last_attempt(
    attempt: int, outcome: str
) -> None:
    s = setup(hml("HPDT2"), {"HPDT2": UpstreamGarbled("not JSON")})
    if outcome == "failed":
        with pytest.raises(GaugesFailed):
            await s.run(attempt)
    else:
        assert await s.run(attempt) is Handled.PROCESSED
        assert s.outcomes()["HPDT2"][1].startswith("invalid_data: NWPS answers stayed garbled")
    assert s.outcomes()["HPDT2"][0] == outcome


async def test_a_bug_is_recorded_the_others_finish_and_it_is_raised() -> None:
    answers = {
        "HPDT2": forecast("HPDT2"),
        "BAWT2": RfcForecast(**{**vars(forecast("BAWT2")), "reach_id": "7"}),
    }
    s = setup(hml("HPDT2", "BAWT2"), answers)
    s.network.broken.add("7")
    with pytest.raises(AttributeError, match="NoneType"):
        await s.run()
    assert s.outcomes()["HPDT2"][0] == "routed"
    assert s.outcomes()["BAWT2"][0] == "failed"
    assert s.outcomes()["BAWT2"][1].startswith("bug: AttributeError")
    assert s.counted("failed", "bug") == 1


async def test_a_site_id_that_is_not_a_location_id_is_recorded_and_skipped() -> None:
    s = setup(hml("HPDT2", "../X"), {"HPDT2": forecast("HPDT2")})
    assert await s.run() is Handled.PROCESSED
    assert s.record()["lids"] == ["HPDT2"]
    assert s.outcomes()["../X"][0] == "skipped"
    assert s.outcomes()["../X"][1].startswith("invalid_data: HML document 2")


async def test_a_complete_record_makes_a_redelivery_a_duplicate() -> None:
    s = setup(hml("HPDT2"), {"HPDT2": forecast("HPDT2")})
    await s.run()
    s.nwps.answers.clear()  # nothing may be fetched again
    assert await s.run() is Handled.DUPLICATE


async def test_a_record_with_a_failure_or_of_another_product_is_no_duplicate() -> None:
    s = setup(hml("HPDT2"), {"HPDT2": TransientError("timeout")})
    with pytest.raises(GaugesFailed):
        await s.run()
    s.nwps.answers["HPDT2"] = forecast("HPDT2")
    assert await s.run() is Handled.PROCESSED
    other = PRODUCT.model_copy(update={"issuing_office": "KORN"})
    assert await s.run(product=other) is Handled.PROCESSED  # same key, other content


async def test_the_gauge_bound_holds_per_product() -> None:
    lids = [f"GAG{chr(65 + i)}1" for i in range(6)]
    answers: dict[str, Answer] = {lid: Skipped(lid, SkipReason.NOT_FLOODING) for lid in lids}
    s = setup(hml(*lids), answers, concurrency=2)
    await s.run()
    assert s.nwps.most_running == 2
    # Two products in flight: each has its own bound, so both progress side by side.
    s.nwps.most_running = 0
    await asyncio.gather(
        s.run(product=product_message("p-2")), s.run(product=product_message("p-3"))
    )
    assert s.nwps.most_running == 4


def routing_observations(s: Setup) -> tuple[float, float]:
    """How many routings the histogram saw, and their total seconds."""
    count = s.registry.get_sample_value("rnr_worker_routing_seconds_count") or 0.0
    total = s.registry.get_sample_value("rnr_worker_routing_seconds_sum") or 0.0
    return count, total


async def test_the_routing_time_of_every_routed_gauge_is_observed() -> None:
    answers = {"HPDT2": forecast("HPDT2"), "BAWT2": forecast("BAWT2")}
    s = setup(hml("HPDT2", "BAWT2"), answers)
    assert routing_observations(s) == (0.0, 0.0)
    await s.run()
    count, total = routing_observations(s)
    assert count == 2
    assert total > 0
    # Every observation lies in a bucket: the +Inf bucket holds them all.
    assert s.registry.get_sample_value("rnr_worker_routing_seconds_bucket", {"le": "+Inf"}) == 2


async def test_routing_time_counts_a_refused_forecast_but_not_a_gauge_never_routed() -> None:
    answers: dict[str, Answer] = {
        "HPDT2": forecast("HPDT2", (float("inf"), 1.0)),  # the router runs, then refuses it
        "BAWT2": Skipped("BAWT2", SkipReason.NOT_FLOODING),  # never reaches the router
        "GDLT2": UpstreamUnavailable("HTTP 503"),
    }
    s = setup(hml("HPDT2", "BAWT2", "GDLT2"), answers)
    with pytest.raises(GaugesFailed):
        await s.run()
    assert routing_observations(s)[0] == 1
