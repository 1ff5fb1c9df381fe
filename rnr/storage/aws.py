"""One aioboto3 session per process, pointed at an emulator when one is configured.

``AWS_ENDPOINT_URL`` (LocalStack, moto server) applies to every client the project
opens; in AWS it is unset and the SDK's normal resolution applies.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from rnr.core.settings import AwsSettings


class AwsClients:
    """Creates service clients that share one session and one endpoint setting.

    The SDK (about half a second of imports) loads on the first client, not at
    import: a producer that reads no secret never pays for it at cold start.
    """

    def __init__(self, settings: AwsSettings) -> None:
        self._settings = settings
        self._session: Any = None
        self._config: Any = None

    def client(self, service: str, **config: Any) -> AbstractAsyncContextManager[Any]:
        """A client of ``service``; ``config`` (botocore ``Config`` options) overrides the
        shared retries and timeouts for a call that must give up sooner."""
        if self._session is None:
            import aioboto3
            from botocore.config import Config

            self._session = aioboto3.Session(region_name=self._settings.aws_region)
            # Retries with jitter in the SDK itself; timeouts well under a Lambda's
            # lifetime so a stuck endpoint fails the invocation instead of hanging it.
            self._config = Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            )
        client_config = self._config
        if config:
            from botocore.config import Config

            client_config = self._config.merge(Config(**config))
        return self._session.client(
            service, endpoint_url=self._settings.aws_endpoint_url, config=client_config
        )
