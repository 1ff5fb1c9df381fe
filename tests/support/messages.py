"""Building product messages for tests."""

from __future__ import annotations

import datetime as dt

from rnr.messaging.models import ProductMessage


def product_message(
    product_id: str, *, base_url: str = "https://api.weather.gov"
) -> ProductMessage:
    return ProductMessage(
        id=product_id,
        url=f"{base_url}/products/{product_id}",
        wmo_collective_id="SRUS54",
        issuing_office="KFWR",
        issuance_time=dt.datetime(2025, 5, 5, 19, tzinfo=dt.UTC),
        product_code="HML",
        product_name="Hydrologic Markup Language",
    )
