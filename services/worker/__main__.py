"""``python -m services.worker``: the long-running consumer with its HTTP health app.

Environment: see ``WorkerSettings`` and the README's configuration table.
"""

from __future__ import annotations

import sys

from rnr.core.errors import ConfigurationError
from rnr.core.http_server import serve
from rnr.core.logging import setup_logging
from rnr.core.settings import load_settings
from services.worker.app import create_app
from services.worker.settings import WorkerSettings


def main() -> int:
    try:
        settings = load_settings(WorkerSettings)
    except ConfigurationError as exc:
        print(f"rnr-worker: {exc}", file=sys.stderr)
        return 2
    setup_logging("rnr-worker", settings.log_level)
    serve(create_app(settings), host="0.0.0.0", port=settings.http_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
