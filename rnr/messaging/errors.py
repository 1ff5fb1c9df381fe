"""Messaging failures, mapped onto the retry/dead-letter split."""

from rnr.core.errors import PermanentError, TransientError


class PublishFailed(TransientError):
    """The broker did not confirm a publish (nack, timeout or lost connection)."""


class UnroutableMessage(PublishFailed):
    """The broker returned a mandatory message: no queue is bound for its routing key.

    This is a deployment fault (topology missing or renamed), not a bad message, so it
    is retried like any failed publish once an operator has fixed the topology.
    """


class InvalidMessage(PermanentError):
    """A delivered body that is not a valid message of a schema version we read."""
