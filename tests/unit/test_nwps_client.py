"""The NWPS client against the replay server's fixtures and injected failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rnr.hydro.forecast import RfcForecast, Skipped, SkipReason
from rnr.upstream.http import UpstreamClient, UpstreamUnavailable
from rnr.upstream.nwps import NwpsClient
from tests.conftest import Replay


@pytest.fixture
async def nwps(replay: Replay) -> AsyncIterator[NwpsClient]:
    session = UpstreamClient.open_session(user_agent="rnr-tests", timeout_seconds=5)
    yield NwpsClient(UpstreamClient(session, retries=1, backoff_seconds=0.01), replay.nwps_api_url)
    await session.close()


async def test_flooding_gauge_gives_a_routable_forecast(nwps: NwpsClient) -> None:
    forecast = await nwps.rfc_forecast("HPDT2")
    assert isinstance(forecast, RfcForecast)
    assert forecast.reach_id == "3121538"
    assert forecast.flood_category == "moderate"
    assert len(forecast.flow_m3_s) == 40
    # The fixture's last observation is 17.0 kcfs.
    assert forecast.initial_flow_m3_s == pytest.approx(481.386392064)


@pytest.mark.parametrize(
    ("lid", "reason"),
    [
        ("GDLT2", SkipReason.NOT_FLOODING),
        ("MSRM7", SkipReason.NOT_FLOODING),
        ("BLNT2", SkipReason.NOT_FLOODING),
        ("NCHT2", SkipReason.NO_REACH_ID),
        ("KNSA2", SkipReason.OUTSIDE_CONUS),
        ("ZZZZ9", SkipReason.UNKNOWN_GAUGE),
    ],
)
async def test_fixture_gauges_are_skipped_with_their_reason(
    nwps: NwpsClient, lid: str, reason: SkipReason
) -> None:
    skipped = await nwps.rfc_forecast(lid)
    assert isinstance(skipped, Skipped)
    assert skipped.reason is reason


async def test_missing_values_in_the_fixture_are_dropped(nwps: NwpsClient) -> None:
    raw = (await nwps.stageflow("ILRO2", "forecast")).data
    missing = sum(point.secondary == -999 for point in raw)
    forecast = await nwps.rfc_forecast("ILRO2")
    assert isinstance(forecast, RfcForecast)
    assert missing >= 2
    assert (forecast.flow_m3_s > 0).all()
    assert len(forecast.flow_m3_s) == len(raw) - missing


async def test_cfs_gauge_is_converted(nwps: NwpsClient) -> None:
    forecast = await nwps.rfc_forecast("PRLL1")
    assert isinstance(forecast, RfcForecast)
    assert forecast.initial_flow_m3_s == pytest.approx(45000.0 * 0.028316846592)


async def test_persistent_5xx_is_transient(nwps: NwpsClient, replay: Replay) -> None:
    replay.fault(r"^/nwps/v1/gauges/HPDT2/stageflow/forecast$", status=503)
    with pytest.raises(UpstreamUnavailable):
        await nwps.rfc_forecast("HPDT2")
