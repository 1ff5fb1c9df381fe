"""Options every subcommand accepts, wherever on the command line they are typed."""

from __future__ import annotations

import argparse

DEFAULT_LOG_LEVEL = "INFO"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_log_level(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--log-level``, before or after the subcommand: on a subcommand's parser it has
    no default of its own (``SUPPRESS``), so it never overwrites the one given first."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default if default is not None else argparse.SUPPRESS,
        help=f"JSON log lines on stderr at this level and above (default: {DEFAULT_LOG_LEVEL})",
    )
