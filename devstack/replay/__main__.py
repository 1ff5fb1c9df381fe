"""Run the replay server: ``python -m devstack.replay [--host H] [--port P] [--fixtures DIR]``.

Environment variables (the flags win):

- ``REPLAY_HOST``: interface to listen on (default ``127.0.0.1``).
- ``REPLAY_PORT``: TCP port (default ``8090``).
- ``LOG_LEVEL``: ``DEBUG``, ``INFO`` (default), ``WARNING`` or ``ERROR``.

The first log line names the two URLs the services need, ``NWS_API_URL`` (the root)
and ``NWPS_API_URL`` (``/nwps/v1``).
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
from collections.abc import Sequence

import uvicorn

from devstack.replay.server import NWPS_PREFIX, create_app
from rnr.core.logging import setup_logging

logger = logging.getLogger("devstack.replay")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.replay",
        description="Serve api.weather.gov and NWPS answers from fixtures.",
    )
    parser.add_argument("--host", default=os.environ.get("REPLAY_HOST", DEFAULT_HOST))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("REPLAY_PORT", str(DEFAULT_PORT)))
    )
    parser.add_argument(
        "--fixtures",
        type=pathlib.Path,
        default=None,
        help="fixture folder (default: the package's devstack/replay/fixtures)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    setup_logging("replay", os.environ.get("LOG_LEVEL", "INFO"))
    app = create_app(args.fixtures)
    root = f"http://{args.host}:{args.port}"
    logger.info(
        "replay server on %s: use NWS_API_URL=%s NWPS_API_URL=%s%s",
        root,
        root,
        root,
        NWPS_PREFIX,
        extra={"nws_api_url": root, "nwps_api_url": f"{root}{NWPS_PREFIX}"},
    )
    # log_config=None keeps uvicorn's loggers on the JSON root handler set up above.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
