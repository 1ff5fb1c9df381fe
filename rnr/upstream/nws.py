"""The weather.gov products API: the list of HML products and each product's text.

The listing is where a product id enters the pipeline (it becomes a Redis key, a
queue message, a URL and an S3 key): an entry whose id or issuance time does not
validate is set aside by position, never published.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from rnr.core.identifiers import ProductId
from rnr.core.timestamps import within_span
from rnr.upstream.http import UpstreamClient, UpstreamRejected

logger = logging.getLogger(__name__)


class ProductSummary(BaseModel):
    """One entry of ``/products?type=HML`` (the JSON-LD ``@graph``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(validation_alias=AliasChoices("@id", "url"))
    id: ProductId
    wmo_collective_id: str = Field(validation_alias="wmoCollectiveId", max_length=256)
    issuing_office: str = Field(validation_alias="issuingOffice", max_length=256)
    issuance_time: Annotated[AwareDatetime, AfterValidator(within_span)] = Field(
        validation_alias="issuanceTime"
    )
    product_code: str = Field(validation_alias="productCode", max_length=256)
    product_name: str = Field(validation_alias="productName", max_length=256)


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
        return read_listing(payload)

    async def product_text(self, product_id: str) -> str:
        payload = await self._http.get_json(
            f"{self._base_url}/products/{quote(product_id)}", accept="application/ld+json"
        )
        return read_product_text(product_id, payload)


def read_listing(payload: Any) -> ProductListing:
    """The products of a listing answer, and the entries set aside (by id or position).

    Raises:
        UpstreamRejected: the answer has no ``@graph`` list.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("@graph"), list):
        raise UpstreamRejected("product listing has no '@graph' list")
    products: list[ProductSummary] = []
    invalid: list[str] = []
    for position, entry in enumerate(payload["@graph"]):
        try:
            products.append(ProductSummary.model_validate(entry))
        except ValidationError as exc:
            label = entry.get("id") if isinstance(entry, dict) else None
            # The id failed validation, or may have: quote it shortened, never whole.
            shown = str(label)[:60] if label else f"#{position}"
            invalid.append(shown)
            logger.error(
                "skipping invalid product listing entry",
                extra={"entry": shown, "reason": str(exc).splitlines()[0][:300]},
            )
    products.sort(key=lambda product: (product.issuance_time, product.id))
    return ProductListing(products=products, invalid=invalid)


def read_product_text(product_id: str, payload: Any) -> str:
    """The ``productText`` of a product answer.

    Raises:
        UpstreamRejected: the answer holds no text.
    """
    text = payload.get("productText") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise UpstreamRejected(f"product {product_id} has no 'productText'")
    return text
