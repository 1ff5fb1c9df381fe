"""Servers the tests start themselves: moto, the replay server, and helpers to wait on them."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import uvicorn
from mirakuru import TCPExecutor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tcp_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def uvicorn_in_thread(app: object, port: int) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1:port in a background thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=15, what=f"uvicorn on port {port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def reply_json(
    request: BaseHTTPRequestHandler,
    status: int,
    payload: object,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with ``payload`` as JSON (no body when it is None)."""
    data = b"" if payload is None else json.dumps(payload).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)


@contextlib.contextmanager
def http_server_in_thread(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve a stdlib request handler on 127.0.0.1 (a free port) in a background thread;
    yields the port. For the fakes of AWS endpoints (ECS agent, Lambda Invoke API)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def wait_until_async(
    predicate: Callable[[], bool], *, within: float, interval: float = 0.05, what: str = ""
) -> None:
    """``wait_until`` for tests running on the event loop (keeps the loop turning)."""
    import asyncio

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {within}s waiting for {what or predicate}")


class MotoProcess:
    """moto in server mode as a process of its own, under ``base_dir``; the chaos suite's
    S3 (its services run as processes too, and the S3 scenario proxies it)."""

    def __init__(self, base_dir: Path) -> None:
        self.dir = base_dir / "moto"
        self.port = free_port()
        self._executor: TCPExecutor | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoProcess:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._executor = TCPExecutor(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            host="127.0.0.1",
            port=self.port,
            timeout=30,
            stdout=(self.dir / "moto.out").open("w"),
            stderr=subprocess.STDOUT,
        )
        self._executor.start()
        return self

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.kill()
