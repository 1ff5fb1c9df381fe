"""The error hierarchy every service shares.

The split decides what happens to a message: a ``TransientError`` is retried later
(the same input may succeed), a ``PermanentError`` goes to the dead-letter queue at
once (retrying cannot help). Each package subclasses these where it needs a name.
"""


class RnrError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigurationError(RnrError):
    """The environment does not describe a runnable service."""


class TransientError(RnrError):
    """A failure that may go away on retry: an outage, a timeout, a 5xx."""


class PermanentError(RnrError):
    """A failure that retrying cannot fix: a bad payload, a missing product."""
