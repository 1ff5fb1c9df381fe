"""One-shot set-up of an AWS emulator for the local stack: buckets and the broker secret.

Idempotent, so docker compose may run it on every ``up`` and ``make run`` before
every run. Environment: ``AWS_ENDPOINT_URL`` (required: this never touches real
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

from rnr.core.logging import setup_logging
from rnr.core.settings import AwsSettings
from rnr.storage.aws import AwsClients

logger = logging.getLogger("rnr.local.bootstrap")


async def bootstrap(
    clients: AwsClients,
    *,
    buckets: list[str],
    secret_name: str,
    broker_username: str,
    broker_password: str,
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
    buckets = [
        os.environ.get("INPUT_BUCKET", "rnr-input"),
        os.environ.get("OUTPUT_BUCKET", "rnr-output"),
    ]
    result = asyncio.run(
        bootstrap(
            AwsClients(settings),
            buckets=buckets,
            secret_name=os.environ.get("BOOTSTRAP_BROKER_SECRET_NAME", "rnr/local/broker"),
            broker_username=os.environ.get("BOOTSTRAP_BROKER_USERNAME", "guest"),
            broker_password=os.environ.get("BOOTSTRAP_BROKER_PASSWORD", "guest"),
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
