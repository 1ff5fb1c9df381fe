"""S3 objects through one long-lived aioboto3 client.

Client errors are sorted into the project's transient/permanent split here, so the
worker's retry policy never has to understand botocore exceptions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rnr.core.errors import PermanentError, TransientError
from rnr.storage.aws_errors import AWS_CALL_ERRORS, error_code

_PERMANENT_CODES = {"NoSuchBucket", "AccessDenied", "InvalidBucketName", "NoSuchKey"}


class StorageUnavailable(TransientError):
    """S3 failed in a way a retry may fix (5xx, throttling, network)."""


class StorageRejected(PermanentError):
    """S3 refused the request for a reason a retry cannot fix (no bucket, no access)."""


def _translate(exc: Exception, action: str) -> Exception:
    code = error_code(exc)
    if code in _PERMANENT_CODES:
        return StorageRejected(f"{action}: {code}")
    return StorageUnavailable(f"{action}: {exc}")


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: enough to tell whether it changed since it was last seen."""

    key: str
    etag: str
    last_modified: dt.datetime
    size: int


class ObjectStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    async def put_bytes(
        self, bucket: str, key: str, body: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        try:
            await self._client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type
            )
        except AWS_CALL_ERRORS as exc:
            raise _translate(exc, f"put s3://{bucket}/{key}") from exc

    async def get_bytes(self, bucket: str, key: str) -> bytes:
        try:
            answer = await self._client.get_object(Bucket=bucket, Key=key)
            async with answer["Body"] as stream:
                return await stream.read()
        except AWS_CALL_ERRORS as exc:
            raise _translate(exc, f"get s3://{bucket}/{key}") from exc

    async def get_bytes_if_exists(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or ``None`` where there is no such key (a first run)."""
        try:
            return await self.get_bytes(bucket, key)
        except StorageRejected as exc:
            if exc.__cause__ is not None and error_code(exc.__cause__) == "NoSuchKey":
                return None
            raise

    async def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        objects: list[ObjectInfo] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                objects.extend(
                    ObjectInfo(
                        key=item["Key"],
                        etag=item["ETag"].strip('"'),
                        last_modified=item["LastModified"],
                        size=item["Size"],
                    )
                    for item in page.get("Contents", [])
                )
        except AWS_CALL_ERRORS as exc:
            raise _translate(exc, f"list s3://{bucket}/{prefix}") from exc
        return objects
