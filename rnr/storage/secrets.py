"""Broker credentials from AWS Secrets Manager, cached for the life of the process.

A Lambda that fetched the secret on every invocation would pay a network round trip
and an API charge per run; a cached copy is refreshed after ``ttl_seconds`` or when
the caller reports that it stopped working (the secret was rotated).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rnr.core.errors import ConfigurationError, TransientError
from rnr.storage.aws import AwsClients


@dataclass(frozen=True)
class BrokerCredentials:
    username: str
    password: str


class SecretCache:
    def __init__(self, clients: AwsClients, ttl_seconds: float = 900.0) -> None:
        self._clients = clients
        self._ttl_seconds = ttl_seconds
        self._cached: dict[str, tuple[float, BrokerCredentials]] = {}

    def invalidate(self, secret_arn: str) -> None:
        self._cached.pop(secret_arn, None)

    async def broker_credentials(self, secret_arn: str) -> BrokerCredentials:
        hit = self._cached.get(secret_arn)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_seconds:
            return hit[1]
        credentials = await self._fetch(secret_arn)
        self._cached[secret_arn] = (time.monotonic(), credentials)
        return credentials

    async def _fetch(self, secret_arn: str) -> BrokerCredentials:
        from rnr.storage.aws_errors import AWS_CALL_ERRORS, error_code

        try:
            async with self._clients.client("secretsmanager") as client:
                answer = await client.get_secret_value(SecretId=secret_arn)
        except AWS_CALL_ERRORS as exc:
            code = error_code(exc)
            if code in {"ResourceNotFoundException", "AccessDeniedException"}:
                raise ConfigurationError(
                    f"cannot read RABBITMQ_SECRET_ARN {secret_arn}: {code}; check the ARN "
                    "and that the role may call secretsmanager:GetSecretValue on it"
                ) from exc
            raise TransientError(f"Secrets Manager failed: {exc}") from exc
        try:
            payload = json.loads(answer["SecretString"])
            return BrokerCredentials(username=payload["username"], password=payload["password"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"secret {secret_arn} must be JSON with 'username' and 'password' keys"
            ) from exc
