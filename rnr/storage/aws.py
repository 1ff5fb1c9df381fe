"""One aioboto3 session per process, pointed at an emulator when one is configured.

``AWS_ENDPOINT_URL`` (LocalStack, moto server) applies to every client the project
opens; in AWS it is unset and the SDK's normal resolution applies.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import aioboto3
from botocore.config import Config

from rnr.core.settings import AwsSettings

# Retries with jitter in the SDK itself; connect and read timeouts well under a
# Lambda's lifetime so a stuck endpoint fails the invocation instead of hanging it.
_CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
)


class AwsClients:
    """Creates service clients that share one session and one endpoint setting."""

    def __init__(self, settings: AwsSettings) -> None:
        self._settings = settings
        self._session = aioboto3.Session(region_name=settings.aws_region)

    def client(self, service: str) -> AbstractAsyncContextManager[Any]:
        return self._session.client(
            service, endpoint_url=self._settings.aws_endpoint_url, config=_CLIENT_CONFIG
        )
