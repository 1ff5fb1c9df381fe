"""``python -m services.worker``: the long-running consumer with its HTTP health app.

Environment: see ``WorkerSettings`` and the README's configuration table.

A SIGTERM can come while the interpreter is still importing numpy, numba and the
AWS SDK (a task stopped right after it started). The handler below is installed
before those imports, so such a signal is remembered, nothing starts consuming, and
the process exits 0 instead of dying with -15.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

_early_signals: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    _early_signals.append(signum)


for _signal in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_signal, _remember)


def main() -> int:
    from rnr.core.errors import ConfigurationError
    from rnr.core.settings import load_settings
    from services.worker.settings import WorkerSettings

    try:
        settings = load_settings(WorkerSettings)
    except ConfigurationError as exc:
        print(f"rnr-worker: {exc}", file=sys.stderr)
        return 2
    if _early_signals:
        return 0

    from rnr.core.http_server import serve
    from rnr.core.logging import setup_logging
    from services.worker.app import create_app, drain_of

    setup_logging("rnr-worker", settings.log_level)
    app = create_app(settings)
    budget = settings.stop_budget
    serve(
        app,
        host=settings.http_host,
        port=settings.http_port,
        graceful_seconds=budget.http_close_seconds,
        drain=drain_of(app),
        stop_requested=lambda: bool(_early_signals),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
