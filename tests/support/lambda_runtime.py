"""A fake AWS Lambda Runtime API, enough for the real awslambdaric to run a handler.

It serves the four routes the runtime interface client uses: the long-poll for the
next invocation, the response and error posts per invocation, and the init error.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass
class Outcome:
    request_id: str
    ok: bool
    body: Any


@dataclass
class FakeRuntime:
    events: queue.Queue[tuple[str, dict[str, Any]]] = field(default_factory=queue.Queue)
    outcomes: queue.Queue[Outcome] = field(default_factory=queue.Queue)
    init_errors: list[Any] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> str:
        request_id = str(uuid.uuid4())
        self.events.put((request_id, event))
        return request_id

    def outcome(self, timeout: float) -> Outcome:
        return self.outcomes.get(timeout=timeout)


def _handler_for(runtime: FakeRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return raw.decode(errors="replace")

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(404)
                return
            request_id, event = runtime.events.get()  # long poll, as the real API does
            self._reply(
                200,
                json.dumps(event).encode(),
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": "9999999999999",
                    "Lambda-Runtime-Invoked-Function-Arn": (
                        "arn:aws:lambda:us-east-1:000000000000:function:rnr-test"
                    ),
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                    "Content-Type": "application/json",
                },
            )

        def do_POST(self) -> None:
            body = self._body()
            if self.path == f"{PREFIX}/init/error":
                runtime.init_errors.append(body)
                runtime.outcomes.put(Outcome("init", False, body))
                self._reply(202)
                return
            parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
            if len(parts) == 2 and parts[1] in {"response", "error"}:
                runtime.outcomes.put(Outcome(parts[0], parts[1] == "response", body))
                self._reply(202)
                return
            self._reply(404)

    return Handler


class FakeRuntimeServer:
    def __init__(self) -> None:
        self.runtime = FakeRuntime()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.runtime))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> FakeRuntime:
        self._thread.start()
        return self.runtime

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
