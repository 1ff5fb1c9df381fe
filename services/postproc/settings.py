"""Post-processor configuration (see the README's configuration table)."""

from rnr.core.settings import AwsSettings, CommonSettings, OutputSettings


class PostprocSettings(CommonSettings, AwsSettings, OutputSettings):
    pass
