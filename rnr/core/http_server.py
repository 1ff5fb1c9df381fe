"""Running an ASGI app with uvicorn so that SIGTERM is a clean, zero-status stop."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn


class _CleanExitServer(uvicorn.Server):
    """uvicorn re-raises the signal after its graceful shutdown, so the process dies
    with status -15. ECS and compose read that as a crash; a drained service that
    stopped on request exits 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig in (signal.SIGTERM, signal.SIGINT):
            self._captured_signals.clear()


def serve(app: object, *, host: str, port: int, graceful_seconds: float = 5.0) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, timeout_graceful_shutdown=graceful_seconds
    )
    _CleanExitServer(config).run()
