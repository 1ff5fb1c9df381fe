"""Autoscaler configuration (see the README's configuration table)."""

from rnr.core.settings import AwsSettings, BrokerSettings, CommonSettings


class AutoscalerSettings(CommonSettings, BrokerSettings, AwsSettings):
    pass
