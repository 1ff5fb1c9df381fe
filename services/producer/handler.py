"""Lambda entry point of the producer: ``services.producer.handler.handler``.

Environment: see ``ProducerSettings`` and the README's configuration table.
"""

from rnr.core.lambda_entry import LambdaFunction
from services.producer import producer
from services.producer.settings import ProducerSettings

function = LambdaFunction(
    "producer",
    settings_cls=ProducerSettings,
    setup=producer.setup,
    run=producer.run,
    checks=producer.checks,
)
handler = function.aws_handler
