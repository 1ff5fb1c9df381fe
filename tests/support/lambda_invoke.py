"""A stand-in for the Lambda Invoke API on 127.0.0.1, for AWS_ENDPOINT_URL.

moto's Lambda runs functions in Docker, and no Docker engine runs on our CI machines;
its Docker-less backend accepts invokes but keeps no record of them. This server serves
``POST /2015-03-31/functions/{name}/invocations`` as Lambda does for an ``Event``
invoke (202, empty body), records each call in order, and answers the status a test
asks for instead, with Lambda's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.support.servers import http_server_in_thread, reply_json

PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"


@dataclass(frozen=True)
class Invocation:
    function_name: str
    invocation_type: str | None
    payload: Any


@dataclass
class FakeLambda:
    endpoint: str = ""
    calls: list[Invocation] = field(default_factory=list)
    status: int = 202


def _handler(fake: FakeLambda) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
                self._reply(404, {"Type": "User", "message": f"no route {path}"})
                return
            fake.calls.append(
                Invocation(
                    unquote(path[len(PREFIX) : -len(SUFFIX)]),
                    self.headers.get("X-Amz-Invocation-Type"),
                    json.loads(raw) if raw else None,
                )
            )
            if fake.status >= 400:
                self._reply(fake.status, {"Type": "Service", "message": "injected failure"})
                return
            self._reply(fake.status, None)

        def _reply(self, status: int, payload: dict[str, Any] | None) -> None:
            error = {"X-Amzn-ErrorType": "ServiceException"} if status >= 400 else {}
            reply_json(self, status, payload, error)

    return Handler


@contextmanager
def fake_lambda() -> Iterator[FakeLambda]:
    fake = FakeLambda()
    with http_server_in_thread(_handler(fake)) as port:
        fake.endpoint = f"http://127.0.0.1:{port}"
        yield fake
