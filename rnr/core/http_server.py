"""Running an ASGI app with uvicorn so that SIGTERM is a clean, zero-status stop.

uvicorn's own shutdown closes the listening socket first and runs the app's lifespan
shutdown last, so a service that drains work in its lifespan cannot answer
``/readyz`` while it drains. With ``drain``, the first SIGTERM or SIGINT runs that
coroutine while the server keeps serving (so ``/readyz`` can say 503), and only then
lets uvicorn shut down; a second signal makes uvicorn shut down at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

Drain = Callable[[], Awaitable[None]]


class _CleanExitServer(uvicorn.Server):
    """uvicorn re-raises the signal after its graceful shutdown, so the process dies
    with status -15. ECS and compose read that as a crash; a drained service that
    stopped on request exits 0 instead."""

    def __init__(
        self,
        config: uvicorn.Config,
        drain: Drain | None,
        stop_requested: Callable[[], bool] | None,
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._stop_requested = stop_requested
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        # Our handlers are installed by now: a signal that came before them is not lost.
        if self._stop_requested is not None and self._stop_requested():
            if self._drain is None:
                self.should_exit = True
            else:
                self._begin_drain()
        await super()._serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain is not None and self._draining is None and self._loop is not None:
            # Signal handlers run between bytecodes of the loop's thread: hand over.
            self._loop.call_soon_threadsafe(self._begin_drain)
            return
        super().handle_exit(sig, frame)
        if sig in (signal.SIGTERM, signal.SIGINT):
            self._captured_signals.clear()

    def _begin_drain(self) -> None:
        if self._draining is not None:
            return
        assert self._drain is not None
        self._draining = asyncio.ensure_future(self._drain_then_exit(self._drain))

    async def _drain_then_exit(self, drain: Drain) -> None:
        try:
            await drain()
        except Exception:
            logger.exception("draining before shutdown failed; shutting down anyway")
        finally:
            self.should_exit = True


def serve(
    app: Any,  # an ASGI application (FastAPI's); uvicorn's own type for it is private
    *,
    host: str,
    port: int,
    graceful_seconds: float = 5.0,
    drain: Drain | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; ``drain`` runs first while it still serves.

    ``stop_requested`` says whether the process was asked to stop before the server
    installed its signal handlers (see ``services.worker.__main__``); if so the stop
    begins at once.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=math.ceil(graceful_seconds),  # uvicorn takes whole seconds
    )
    _CleanExitServer(config, drain, stop_requested).run()
