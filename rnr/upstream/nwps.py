"""The NWPS API (api.water.noaa.gov/nwps/v1): a gauge's metadata and its stage-flow series.

A gauge NWPS does not know (404) is a skip, not a failure; 5xx and timeouts are
retried by the HTTP client and then raised as transient, so the message is retried.
"""

from __future__ import annotations

import asyncio
from typing import Literal
from urllib.parse import quote

from pydantic import ValidationError

from rnr.hydro.forecast import (
    Gauge,
    RfcForecast,
    Skipped,
    SkipReason,
    StageFlowSeries,
    gauge_gate,
    prepare_forecast,
)
from rnr.upstream.http import UpstreamClient, UpstreamNotFound, UpstreamRejected


class NwpsClient:
    def __init__(self, http: UpstreamClient, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    async def gauge(self, lid: str) -> Gauge:
        payload = await self._http.get_json(f"{self._base_url}/gauges/{quote(lid)}")
        try:
            return Gauge.model_validate(payload)
        except ValidationError as exc:
            raise UpstreamRejected(f"NWPS gauge {lid} answer is not a gauge: {exc}") from None

    async def stageflow(
        self, lid: str, kind: Literal["forecast", "observation"]
    ) -> StageFlowSeries:
        url = f"{self._base_url}/gauges/{quote(lid)}/stageflow/{kind}"
        payload = await self._http.get_json(url)
        try:
            return StageFlowSeries.model_validate(payload)
        except ValidationError as exc:
            raise UpstreamRejected(f"NWPS {kind} of {lid} is not a series: {exc}") from None

    async def rfc_forecast(self, lid: str) -> RfcForecast | Skipped:
        """The routable forecast of one gauge, or why it is skipped."""
        try:
            gauge = await self.gauge(lid)
        except UpstreamNotFound:
            return Skipped(lid.upper(), SkipReason.UNKNOWN_GAUGE, "NWPS answered 404")
        skipped = gauge_gate(gauge)
        if skipped is not None:
            return skipped
        forecast, observation = await asyncio.gather(
            self.stageflow(lid, "forecast"), self._observation(lid)
        )
        return prepare_forecast(gauge, forecast, observation)

    async def _observation(self, lid: str) -> StageFlowSeries | None:
        try:
            return await self.stageflow(lid, "observation")
        except UpstreamNotFound:
            return None
