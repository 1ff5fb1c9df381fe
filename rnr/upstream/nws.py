"""The weather.gov products API: the list of HML products and each product's text."""

from __future__ import annotations

import logging
from urllib.parse import quote

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from rnr.upstream.http import UpstreamClient, UpstreamRejected

logger = logging.getLogger(__name__)


class ProductSummary(BaseModel):
    """One entry of ``/products?type=HML`` (the JSON-LD ``@graph``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(validation_alias=AliasChoices("@id", "url"))
    id: str = Field(min_length=1)
    wmo_collective_id: str = Field(validation_alias="wmoCollectiveId")
    issuing_office: str = Field(validation_alias="issuingOffice")
    issuance_time: AwareDatetime = Field(validation_alias="issuanceTime")
    product_code: str = Field(validation_alias="productCode")
    product_name: str = Field(validation_alias="productName")


class ProductListing(BaseModel):
    products: list[ProductSummary]
    invalid: list[str]


class NwsClient:
    def __init__(self, http: UpstreamClient, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    async def list_products(self, product_type: str = "HML") -> ProductListing:
        """Products of one type, oldest first, so a backlog is worked in issuance order.

        An entry that does not validate is reported by id (or position) rather than
        failing the whole listing: one bad entry must not stop every other product.
        """
        payload = await self._http.get_json(
            f"{self._base_url}/products?type={quote(product_type)}", accept="application/ld+json"
        )
        if not isinstance(payload, dict) or not isinstance(payload.get("@graph"), list):
            raise UpstreamRejected("product listing has no '@graph' list")
        products: list[ProductSummary] = []
        invalid: list[str] = []
        for position, entry in enumerate(payload["@graph"]):
            try:
                products.append(ProductSummary.model_validate(entry))
            except ValidationError as exc:
                label = entry.get("id") if isinstance(entry, dict) else None
                invalid.append(str(label or f"#{position}"))
                logger.error(
                    "skipping invalid product listing entry",
                    extra={"entry": label or position, "reason": str(exc).splitlines()[0]},
                )
        products.sort(key=lambda product: (product.issuance_time, product.id))
        return ProductListing(products=products, invalid=invalid)

    async def product_text(self, product_id: str) -> str:
        payload = await self._http.get_json(
            f"{self._base_url}/products/{quote(product_id)}", accept="application/ld+json"
        )
        text = payload.get("productText") if isinstance(payload, dict) else None
        if not isinstance(text, str):
            raise UpstreamRejected(f"product {product_id} has no 'productText'")
        return text
