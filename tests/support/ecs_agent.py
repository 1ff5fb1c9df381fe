"""A stand-in for the ECS agent's task-protection endpoint, on 127.0.0.1.

It records every PUT body in order and answers as the agent does: 200 with the
protection state, or the status the test asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import http_server_in_thread, reply_json

# ECS_AGENT_URI is http://169.254.170.2/api/<task id>; the endpoint hangs below it.
TASK_PREFIX = "/api/0123456789abcdef"


@dataclass
class FakeEcsAgent:
    uri: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    @property
    def states(self) -> list[bool]:
        return [call["ProtectionEnabled"] for call in self.calls]


def _handler(agent: FakeEcsAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != f"{TASK_PREFIX}/task-protection/v1/state":
                self._reply(404, {"error": {"Code": "NotFound"}})
                return
            agent.calls.append(body)
            if agent.status != 200:
                self._reply(agent.status, {"error": {"Code": "ServerException"}})
                return
            protection = {"ProtectionEnabled": body.get("ProtectionEnabled"), "TaskArn": "t"}
            self._reply(200, {"protection": protection})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            reply_json(self, status, payload)

    return Handler


@contextmanager
def fake_ecs_agent() -> Iterator[FakeEcsAgent]:
    agent = FakeEcsAgent()
    with http_server_in_thread(_handler(agent)) as port:
        agent.uri = f"http://127.0.0.1:{port}{TASK_PREFIX}"
        yield agent
