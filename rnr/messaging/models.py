"""The message contract between producer and worker, versioned.

A field change that old workers cannot read bumps ``schema_version``; a worker that
receives a version it does not know dead-letters the message (nothing is lost, and the
reason says which version arrived) instead of guessing.

A body is input from the queue, so it is bounded before it is parsed: a product
message is a few hundred bytes, and one over ``MAX_BODY_BYTES`` is rejected unread.
Every failure to read a body is an ``InvalidMessage`` (permanent), whatever the body
holds: deep nesting, bad UTF-8 or dates the UTC calendar cannot hold included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import pydantic_core
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
)

from rnr.core.identifiers import ProductId
from rnr.core.timestamps import within_span
from rnr.messaging.errors import InvalidMessage

if TYPE_CHECKING:
    from rnr.upstream.nws import ProductSummary

SCHEMA_VERSION: Literal[1] = 1
MAX_BODY_BYTES = 64 * 1024
_SHORT_TEXT = 256


class ProductMessage(BaseModel):
    """One new HML product for the worker to process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    id: ProductId
    url: HttpUrl
    wmo_collective_id: str = Field(max_length=_SHORT_TEXT)
    issuing_office: str = Field(max_length=_SHORT_TEXT)
    issuance_time: Annotated[AwareDatetime, AfterValidator(within_span)]
    product_code: str = Field(max_length=_SHORT_TEXT)
    product_name: str = Field(max_length=_SHORT_TEXT)

    @classmethod
    def from_summary(cls, product: ProductSummary) -> ProductMessage:
        """The message for a product of weather.gov's listing: the producer publishes it,
        and the operators' ``replay`` re-publishes it for one product."""
        return cls(
            id=product.id,
            url=product.url,
            wmo_collective_id=product.wmo_collective_id,
            issuing_office=product.issuing_office,
            issuance_time=product.issuance_time,
            product_code=product.product_code,
            product_name=product.product_name,
        )

    def to_body(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_body(cls, body: bytes) -> ProductMessage:
        if len(body) > MAX_BODY_BYTES:
            raise InvalidMessage(
                f"not a valid ProductMessage v{SCHEMA_VERSION}: body: {len(body):,} bytes, "
                f"over the {MAX_BODY_BYTES:,}-byte limit (a product message is a few hundred bytes)"
            )
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            version = _declared_version(body)
            if version is not None and version != SCHEMA_VERSION:
                raise InvalidMessage(
                    f"not a valid ProductMessage v{SCHEMA_VERSION}: schema_version: "
                    f"{version!r} arrived; this worker reads {SCHEMA_VERSION}"
                ) from None
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
                for error in exc.errors()
            )
            raise InvalidMessage(
                f"not a valid ProductMessage v{SCHEMA_VERSION}: {problems}"
            ) from None


def _declared_version(body: bytes) -> object:
    """The body's ``schema_version``, if it is a JSON object that has one.

    pydantic-core's parser bounds nesting depth (``json.loads`` would raise
    RecursionError on a deeply nested body) and raises ValueError on anything it
    cannot read.
    """
    try:
        payload = pydantic_core.from_json(body)
    except ValueError:
        return None
    return payload.get("schema_version") if isinstance(payload, dict) else None
