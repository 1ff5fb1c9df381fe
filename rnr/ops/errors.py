"""Errors the operators' tool reports as one line and an exit code, never a traceback.

Each one says what happened and what to check; the exit code tells a script which
kind of failure it was, so that a wrapper may retry only what retrying can fix.
"""

from __future__ import annotations

from rnr.core.errors import RnrError

EXIT_OK = 0
# The command ran but something it was asked to do failed (an unroutable redrive...).
EXIT_FAILED = 1
# Bad arguments or configuration (argparse uses 2 as well).
EXIT_USAGE = 2
# The broker could not be reached, or the connection dropped mid-way: run again.
EXIT_BROKER = 3
EXIT_INTERRUPTED = 130


class OperatorError(RnrError):
    """A failure the operator can act on; the message says how."""

    exit_code = EXIT_FAILED


class UsageError(OperatorError):
    exit_code = EXIT_USAGE


class Unavailable(OperatorError):
    """Something the command needs did not answer; the same command may work later."""

    exit_code = EXIT_BROKER


class BrokerUnavailable(Unavailable):
    """The broker is unreachable, or went away during the command."""


class QueueMissing(OperatorError):
    """A queue or exchange the command needs does not exist on the broker."""
