"""The message contract between producer and worker, versioned.

A field change that old workers cannot read bumps ``schema_version``; a worker that
receives a version it does not know dead-letters the message (nothing is lost, and the
reason says which version arrived) instead of guessing.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from rnr.messaging.errors import InvalidMessage

SCHEMA_VERSION = 1


class ProductMessage(BaseModel):
    """One new HML product for the worker to process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    url: HttpUrl
    wmo_collective_id: str
    issuing_office: str
    issuance_time: AwareDatetime
    product_code: str
    product_name: str

    def to_body(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_body(cls, body: bytes) -> ProductMessage:
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
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload.get("schema_version") if isinstance(payload, dict) else None
