"""One-shot set-up of an AWS emulator for the local stack: buckets and the broker secret.

Idempotent, so docker compose may run it on every ``up`` and ``make run`` before
every run. It also uploads the project's small sample hydrofabric to the input bucket
(under ``hydrofabric/small/``). Environment: ``AWS_ENDPOINT_URL`` (required: this never touches real
AWS), ``INPUT_BUCKET``, ``OUTPUT_BUCKET``, ``BOOTSTRAP_BROKER_SECRET_NAME`` and
``BOOTSTRAP_BROKER_USERNAME``/``BOOTSTRAP_BROKER_PASSWORD`` (the secret's content).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from botocore.exceptions import ClientError

from devstack import SAMPLE_HYDROFABRIC
from rnr.core.logging import setup_logging
from rnr.core.settings import AwsSettings
from rnr.storage.aws import AwsClients

logger = logging.getLogger("devstack.local.bootstrap")

SAMPLE_HYDROFABRIC_PREFIX = "hydrofabric/small"
# What HYDROFABRIC_LOCATION names for the worker after this bootstrap.
SAMPLE_HYDROFABRIC_LOCATION = f"{SAMPLE_HYDROFABRIC_PREFIX}/parquet"


async def bootstrap(
    clients: AwsClients,
    *,
    buckets: list[str],
    secret_name: str,
    broker_username: str,
    broker_password: str,
    input_bucket: str,
) -> dict[str, str]:
    """Create what the services expect to exist; return the secret's ARN."""
    async with clients.client("s3") as s3:
        for bucket in buckets:
            try:
                await s3.create_bucket(Bucket=bucket)
                logger.info("bucket created", extra={"bucket": bucket})
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in {
                    "BucketAlreadyOwnedByYou",
                    "BucketAlreadyExists",
                }:
                    raise
            await s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        # The sample hydrofabric, as a GeoPackage and as Parquet layers: the replay
        # server's flooding gauges lie on it, so the stack routes real forecasts.
        for path in sorted(p for p in SAMPLE_HYDROFABRIC.rglob("*") if p.is_file()):
            key = f"{SAMPLE_HYDROFABRIC_PREFIX}/{path.relative_to(SAMPLE_HYDROFABRIC).as_posix()}"
            await s3.put_object(Bucket=input_bucket, Key=key, Body=path.read_bytes())
        logger.info(
            "sample hydrofabric uploaded",
            extra={"bucket": input_bucket, "prefix": SAMPLE_HYDROFABRIC_PREFIX},
        )
    secret = json.dumps({"username": broker_username, "password": broker_password})
    async with clients.client("secretsmanager") as secrets:
        try:
            answer = await secrets.create_secret(Name=secret_name, SecretString=secret)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceExistsException":
                raise
            answer = await secrets.put_secret_value(SecretId=secret_name, SecretString=secret)
    logger.info("broker secret ready", extra={"secret_arn": answer["ARN"]})
    return {"secret_arn": answer["ARN"]}


def main() -> int:
    setup_logging("rnr-bootstrap")
    settings = AwsSettings()
    if not settings.aws_endpoint_url:
        print("rnr-bootstrap: AWS_ENDPOINT_URL must point at an emulator", file=sys.stderr)
        return 2
    input_bucket = os.environ.get("INPUT_BUCKET", "rnr-input")
    buckets = [input_bucket, os.environ.get("OUTPUT_BUCKET", "rnr-output")]
    result = asyncio.run(
        bootstrap(
            AwsClients(settings),
            buckets=buckets,
            secret_name=os.environ.get("BOOTSTRAP_BROKER_SECRET_NAME", "rnr/local/broker"),
            broker_username=os.environ.get("BOOTSTRAP_BROKER_USERNAME", "guest"),
            broker_password=os.environ.get("BOOTSTRAP_BROKER_PASSWORD", "guest"),
            input_bucket=input_bucket,
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
