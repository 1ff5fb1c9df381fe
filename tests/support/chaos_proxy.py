"""A TCP proxy between a service and a server (here: the worker and moto's S3) that can
fail on demand, the two ways a real endpoint goes away:

* ``refuse``: nothing listens any more, so every connect gets ECONNREFUSED (a stopped
  endpoint, a closed security group with REJECT);
* ``blackhole``: connections are accepted and whatever is sent is swallowed, but no
  answer ever comes (a dropped route, a hung load balancer): only the client's own
  timeouts end a request.

Entering either mode cuts every open connection, so pooled keep-alive connections fail
too; ``restore`` cuts the black-holed ones (their requests never got an answer) and
forwards again. The proxy runs an asyncio loop in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, Literal

from tests.support.servers import free_port

Mode = Literal["pass", "refuse", "blackhole"]
CHUNK = 64 * 1024


class FlakyTcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self.mode: Mode = "pass"
        self.stats: Counter[str] = Counter()
        self.outages: list[dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> FlakyTcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shut(close_listener=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def refuse(self) -> None:
        self._call(self._set_mode("refuse"))

    def blackhole(self) -> None:
        self._call(self._set_mode("blackhole"))

    def restore(self) -> None:
        self._call(self._set_mode("pass"))

    @contextlib.contextmanager
    def outage(self, mode: Mode) -> Iterator[None]:
        """Fail in ``mode`` for the duration of the block, then forward again."""
        started = time.monotonic()
        if mode == "refuse":
            self.refuse()
        else:
            self.blackhole()
        try:
            yield
        finally:
            self.restore()
            self.outages.append({"mode": mode, "seconds": round(time.monotonic() - started, 2)})

    # ----------------------------------------------------------------- on the loop

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _shut(self, *, close_listener: bool) -> None:
        if close_listener and self._server is not None:
            self._server.close()  # stops listening now; cut connections are ours to end
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _set_mode(self, mode: Mode) -> None:
        self.mode = mode
        await self._shut(close_listener=mode == "refuse")
        if mode != "refuse":
            await self._listen()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.add(writer.transport)
        try:
            if self.mode == "blackhole":
                self.stats["blackholed"] += 1
                with contextlib.suppress(OSError):
                    while await reader.read(CHUNK):
                        pass
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
            except OSError:
                self.stats["upstream_unreachable"] += 1
                return
            self.stats["forwarded"] += 1
            self._transports.add(upstream_writer.transport)
            pumps = {
                asyncio.ensure_future(self._pump(reader, upstream_writer)),
                asyncio.ensure_future(self._pump(upstream_reader, writer)),
            }
            # HTTP clients never half-close: when one side ends, the link is over.
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pending:
                pump.cancel()
            upstream_writer.transport.abort()
            self._transports.discard(upstream_writer.transport)
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
