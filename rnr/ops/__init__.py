"""The operators' toolkit: ``python -m rnr.ops`` (see :mod:`rnr.ops.cli`).

What an on-call engineer needs without reading code: the dead-letter queue's contents
by reason (``dlq stats``, ``dlq show``), dead letters back to the work queue
(``dlq redrive``) or gone (``dlq purge``), one product re-enqueued (``replay``).

The top layer of the library: it uses the messaging, storage and upstream code the
services use (the same connection, credentials, publisher and models), and nothing
imports it. Each subcommand is a module exposing ``register(subparsers)``.
"""
