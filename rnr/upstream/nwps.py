"""The NWPS API (api.water.noaa.gov/nwps/v1): a gauge's metadata and its stage-flow series.

A gauge NWPS does not know (404) is a skip, not a failure; 5xx and timeouts are
retried by the HTTP client and then raised as transient, so the message is retried.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal
from urllib.parse import quote

from pydantic import ValidationError

from rnr.core import identifiers
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
        return read_gauge(lid, payload)

    async def stageflow(
        self, lid: str, kind: Literal["forecast", "observation"]
    ) -> StageFlowSeries:
        url = f"{self._base_url}/gauges/{quote(lid)}/stageflow/{kind}"
        return read_series(lid, kind, await self._http.get_json(url))

    async def rfc_forecast(self, lid: str) -> RfcForecast | Skipped:
        """The routable forecast of one gauge, or why it is skipped.

        ``lid`` must be a validated NWS location id (``rnr.core.identifiers.lid``): it
        goes into the URLs and names the forecast, whatever the answer says.
        """
        lid = identifiers.lid(lid)
        try:
            gauge = await self.gauge(lid)
        except UpstreamNotFound:
            return Skipped(lid, SkipReason.UNKNOWN_GAUGE, "NWPS answered 404")
        skipped = gauge_gate(lid, gauge)
        if skipped is not None:
            return skipped
        forecast, observation = await asyncio.gather(
            self.stageflow(lid, "forecast"), self._observation(lid)
        )
        return prepare_forecast(lid, gauge, forecast, observation)

    async def _observation(self, lid: str) -> StageFlowSeries | None:
        try:
            return await self.stageflow(lid, "observation")
        except UpstreamNotFound:
            return None


def read_gauge(lid: str, payload: Any) -> Gauge:
    """A ``/gauges/{lid}`` answer as a Gauge; UpstreamRejected when it is not one."""
    try:
        return Gauge.model_validate(payload)
    except ValidationError as exc:
        raise UpstreamRejected(f"NWPS gauge {lid} answer is not a gauge: {_first(exc)}") from None


def read_series(lid: str, kind: str, payload: Any) -> StageFlowSeries:
    """A stage-flow answer as a series; UpstreamRejected when it is not one."""
    try:
        return StageFlowSeries.model_validate(payload)
    except ValidationError as exc:
        raise UpstreamRejected(f"NWPS {kind} of {lid} is not a series: {_first(exc)}") from None


def _first(exc: ValidationError, count: int = 3) -> str:
    """The first few problems of a validation error, on one line."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"[:200]
        for error in exc.errors()[:count]
    )
