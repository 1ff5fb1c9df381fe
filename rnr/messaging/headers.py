"""The ``x-rnr-*`` headers a message carries once it has failed, in one place.

The worker writes them when it retries or dead-letters a message; the operators' tool
(``python -m rnr.ops``) reads them to sort dead letters and rewrites them on a redrive;
the AsyncAPI document (``docs/asyncapi.yaml``) publishes them as part of the contract.
A message fresh from the producer carries none of them.
"""

from __future__ import annotations

from typing import Final, Literal

ATTEMPT_HEADER: Final = "x-rnr-attempt"
ERROR_HEADER: Final = "x-rnr-error"
ERROR_TYPE_HEADER: Final = "x-rnr-error-type"
FAILED_AT_HEADER: Final = "x-rnr-failed-at"
DEAD_LETTER_REASON_HEADER: Final = "x-rnr-dead-letter-reason"
# The error a dead letter carried when an operator sent it back to the work queue: the
# redriven copy starts again at attempt 1 and loses x-rnr-error, but not its history.
PREVIOUS_ERROR_HEADER: Final = "x-rnr-previous-error"

DeadLetterReason = Literal["permanent", "attempts_exhausted", "invalid_header"]
# Why the worker dead-lettered a message (``x-rnr-dead-letter-reason``): a permanent
# failure, a transient one that outlived its retries, or headers it could not trust.
# A message the broker dead-letters by itself (quorum delivery limit) has no such
# header; RabbitMQ's own ``x-death``/``x-first-death-reason`` say why.
DEAD_LETTER_REASONS: Final[tuple[DeadLetterReason, ...]] = (
    "permanent",
    "attempts_exhausted",
    "invalid_header",
)
