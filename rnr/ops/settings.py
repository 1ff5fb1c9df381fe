"""What the operators' tool reads from the environment: the services' own variables.

It is pointed at a deployment the way the worker is (``RABBITMQ_URL``, or
``RABBITMQ_ENDPOINT`` with ``RABBITMQ_SECRET_ARN``; ``RABBITMQ_EXCHANGE`` and
``RABBITMQ_QUEUE``), so an engineer copies the worker's environment and nothing else.
Credentials never go on the command line, where ``ps`` and shell history would keep them.
"""

from __future__ import annotations

from rnr.core.settings import AwsSettings, BrokerSettings, CommonSettings, UpstreamSettings


class OpsSettings(CommonSettings, BrokerSettings, AwsSettings):
    """The broker (and Secrets Manager, for an Amazon MQ secret)."""


class ReplaySettings(OpsSettings, UpstreamSettings):
    """The broker, and weather.gov (``NWS_API_URL``) to read the product from."""
