"""The ``rnr-ops`` command line: one parser, one subcommand per module, one error policy.

A subcommand module exposes ``register(subparsers)``: it adds its parser(s) and sets
``handler`` on each (``parser.set_defaults(handler=...)``) to a function taking the
parsed arguments and returning an exit code, or a coroutine that does. Adding a
command is adding its module to :data:`SUBCOMMANDS`.

Every failure an operator can act on (:class:`rnr.ops.errors.OperatorError`, a bad
configuration) ends as one line on stderr and a non-zero exit code, never a traceback;
results go to stdout, logs (JSON, one object a line) and progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from rnr.core.errors import ConfigurationError
from rnr.core.logging import setup_logging
from rnr.ops import dlq, index, replay
from rnr.ops.cli_options import DEFAULT_LOG_LEVEL, add_log_level
from rnr.ops.errors import EXIT_INTERRUPTED, EXIT_USAGE, OperatorError

SUBCOMMANDS: tuple[ModuleType, ...] = (dlq, replay, index)
PROGRAM = "rnr-ops"

_DESCRIPTION = """\
The operators' toolkit of the rnr pipeline: look into the dead-letter queue, send dead
letters back to the work queue, replay one product.

It reaches the broker the way the services do, from the environment: RABBITMQ_URL
(amqp://user:pass@host:5672/vhost), or on Amazon MQ RABBITMQ_ENDPOINT
(amqps://b-….mq.<region>.amazonaws.com:5671) with RABBITMQ_SECRET_ARN (and AWS_REGION);
RABBITMQ_EXCHANGE and RABBITMQ_QUEUE name the deployment's exchange and queue (rnr,
rnr.products). Copy them from the worker's task definition.
"""

_EPILOG = """\
exit codes: 0 done; 1 the command failed (the message says why); 2 bad arguments or
configuration; 3 the broker is unreachable or went away (nothing lost: run it again);
130 interrupted.
"""


def build_parser(modules: Sequence[ModuleType] = SUBCOMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_log_level(parser, default=DEFAULT_LOG_LEVEL)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in modules:
        module.register(subparsers)
    return parser


def _quiet_libraries(level: str) -> None:
    """aio-pika logs each failed connection attempt on its own; the tool reports the
    failure once, in its own words."""
    if level != "DEBUG":
        for noisy in ("aio_pika", "aiormq"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(PROGRAM, level=args.log_level, stream=sys.stderr)
    _quiet_libraries(args.log_level)
    try:
        outcome = args.handler(args)
        if inspect.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
        return int(outcome)
    except OperatorError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConfigurationError as exc:
        print(f"{PROGRAM}: configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"{PROGRAM}: interrupted; every message not yet settled is back in its queue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
