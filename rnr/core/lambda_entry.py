"""One async handler, three ways to run it.

* In AWS, ``awslambdaric`` calls :meth:`LambdaFunction.aws_handler` (the image's CMD
  names it, e.g. ``services.producer.handler.handler``). A persistent event loop is
  kept between invocations of a warm container.
* Locally, ``python -m services.<name> serve`` runs the same handler behind HTTP:
  ``POST /invoke`` (what the scheduler sidecar calls) plus /healthz, /readyz, /metrics.
* ``python -m services.<name> once`` runs it a single time and exits non-zero on failure.

Settings are validated before anything else; a bad variable stops the process with
a message naming it. Web-server imports happen only in ``serve`` so the Lambda path
stays light at cold start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings

from rnr.core.errors import ConfigurationError
from rnr.core.logging import setup_logging
from rnr.core.readiness import ReadinessCheck

logger = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
StateT = TypeVar("StateT")
Event = dict[str, Any]


class LambdaFunction(Generic[SettingsT, StateT]):
    """A scheduled function: ``setup`` once per process, ``run`` once per invocation."""

    def __init__(
        self,
        name: str,
        *,
        settings_cls: type[SettingsT],
        setup: Callable[[SettingsT, CollectorRegistry], StateT],
        run: Callable[[StateT, Event], Awaitable[dict[str, Any]]],
        checks: Callable[[StateT], Mapping[str, ReadinessCheck]],
    ) -> None:
        self.name = name
        self._settings_cls = settings_cls
        self._setup = setup
        self._run = run
        self._checks = checks
        self._state: StateT | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.registry = CollectorRegistry()

    def state(self) -> StateT:
        """Settings validated and long-lived objects built, on first use only."""
        if self._state is None:
            from rnr.core.settings import load_settings

            settings = load_settings(self._settings_cls)
            setup_logging(f"rnr-{self.name}", getattr(settings, "log_level", "INFO"))
            self._state = self._setup(settings, self.registry)
        return self._state

    async def invoke(self, event: Event) -> dict[str, Any]:
        state = self.state()
        started = time.perf_counter()
        try:
            result = await self._run(state, event)
        except Exception:
            logger.exception(
                f"{self.name} run failed",
                extra={"duration_seconds": round(time.perf_counter() - started, 3)},
            )
            raise
        logger.info(
            f"{self.name} run finished",
            extra={"result": result, "duration_seconds": round(time.perf_counter() - started, 3)},
        )
        return result

    def aws_handler(self, event: Event, context: object) -> dict[str, Any]:
        """The function awslambdaric calls; exceptions become Lambda errors."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.invoke(event if isinstance(event, dict) else {}))

    def serve(self, host: str, port: int | None) -> None:
        from fastapi import Body

        from rnr.core.health import create_http_app
        from rnr.core.http_server import serve

        state = self.state()
        app = create_http_app(self.name, self.registry, self._checks(state))

        @app.post("/invoke")
        async def invoke(event: Event = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
            return await self.invoke(event)

        settings_port = getattr(getattr(state, "settings", None), "http_port", 8080)
        serve(app, host=host, port=port or settings_port)

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=f"python -m services.{self.name}")
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("once", help="run the handler once and print its result (default)")
        serve = sub.add_parser("serve", help="serve /invoke, /healthz, /readyz, /metrics")
        serve.add_argument("--host", default="0.0.0.0")
        serve.add_argument("--port", type=int, default=None, help="default: HTTP_PORT")
        args = parser.parse_args(argv)
        try:
            if args.command == "serve":
                self.serve(args.host, args.port)
                return 0
            result = asyncio.run(self.invoke({}))
        except ConfigurationError as exc:
            print(f"rnr-{self.name}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"rnr-{self.name}: run failed: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(result, default=str))
        return 0
