"""JSON logs on stdout, one object per line, carrying the correlation id.

The correlation id is the product id: the producer sets it when it publishes, the
worker restores it from the message, so one ``grep`` (or one CloudWatch Logs Insights
filter) follows a product across services. Context lives in ``contextvars`` so
concurrent asyncio tasks keep their own ids.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
_message_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("message_id", default=None)

# Attributes every LogRecord has; anything else passed through ``extra=`` is logged.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def log_context(correlation_id: str | None, message_id: str | None = None) -> Iterator[None]:
    """Tag every log line emitted inside the block with these ids."""
    corr_token = _correlation_id.set(correlation_id)
    msg_token = _message_id.set(message_id)
    try:
        yield
    finally:
        _correlation_id.reset(corr_token)
        _message_id.reset(msg_token)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with the keys an operator filters on."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "timestamp": f"{stamp}.{int(record.msecs):03d}+00:00",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": _correlation_id.get(),
            "message_id": _message_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route the root logger to stdout (or ``stream``) as JSON; safe to call again."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The JSON lines carry none of these, and gathering them (the caller's frame
    # above all) is most of the cost of a log call on the per-message paths.
    # These are the switches the logging documentation names for that ("Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Library chatter at INFO drowns the pipeline's own lines.
    for noisy in ("aiormq", "aio_pika", "botocore", "aiobotocore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
