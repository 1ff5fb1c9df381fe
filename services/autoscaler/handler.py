"""Lambda entry point of the autoscaler: ``services.autoscaler.handler.handler``."""

from rnr.core.lambda_entry import LambdaFunction
from services.autoscaler import autoscaler
from services.autoscaler.settings import AutoscalerSettings

function = LambdaFunction(
    "autoscaler",
    settings_cls=AutoscalerSettings,
    setup=autoscaler.setup,
    run=autoscaler.run,
    checks=autoscaler.checks,
)
handler = function.aws_handler
