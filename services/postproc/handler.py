"""Lambda entry point of the post-processor: ``services.postproc.handler.handler``."""

from rnr.core.lambda_entry import LambdaFunction
from services.postproc import postproc
from services.postproc.settings import PostprocSettings

function = LambdaFunction(
    "postproc",
    settings_cls=PostprocSettings,
    setup=postproc.setup,
    run=postproc.run,
    checks=postproc.checks,
)
handler = function.aws_handler
