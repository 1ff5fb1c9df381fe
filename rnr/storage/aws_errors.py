"""What a failed AWS SDK call raises, in one tuple for every ``except``.

``ClientError`` is the service's own error answer (its code says whether a retry can
help: callers sort it); ``BotoCoreError`` is everything before an answer (endpoint
unreachable, timeouts, credentials). Importing botocore's exceptions is cheap; the
SDK itself stays unloaded until a client is made (``rnr.storage.aws``).
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

AWS_CALL_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)


def error_code(exc: BaseException) -> str:
    """The service's error code of a ``ClientError`` (``NoSuchKey``...), else ``""``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
