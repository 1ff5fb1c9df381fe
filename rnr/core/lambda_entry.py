"""One async handler, three ways to run it.

* In AWS, ``awslambdaric`` calls :meth:`LambdaFunction.aws_handler` (the image's CMD
  names it, e.g. ``services.producer.handler.handler``). A persistent event loop is
  kept between invocations of a warm container.
* Locally, ``python -m services.<name> serve`` runs the same handler behind HTTP:
  ``POST /invoke`` (what the scheduler sidecar calls) plus /healthz, /readyz, /metrics.
* ``python -m services.<name> once`` runs it a single time and exits non-zero on failure.

``serve`` listens on ``HTTP_HOST`` (127.0.0.1 unless set; ``--host`` overrides). The
body of ``POST /invoke`` is the event: a JSON object of at most
``INVOKE_MAX_BODY_BYTES``, ``{}`` when empty. Whoever reaches /invoke starts a run, so:
with ``INVOKE_TOKEN`` set, it requires ``Authorization: Bearer <token>`` (401
otherwise); without it, it serves only a loopback bind and answers 403 on any other.
Every refusal is a 4xx with a JSON ``{"detail": ...}`` naming the reason.

Settings are validated before anything else; a bad variable stops the process with
a message naming it. Web-server imports happen only in ``serve`` so the Lambda path
stays light at cold start.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client import CollectorRegistry
from pydantic import SecretStr, TypeAdapter
from pydantic_settings import BaseSettings

from rnr.core.errors import ConfigurationError
from rnr.core.logging import setup_logging
from rnr.core.readiness import ReadinessCheck

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
StateT = TypeVar("StateT")
Event = dict[str, Any]

# An event is a small JSON object (the scheduler's {"source": ...}, the producer's
# wake); nothing a caller legitimately sends comes near this.
INVOKE_MAX_BODY_BYTES = 64 * 1024
# Where ``serve`` listens for a settings class without HTTP_HOST (CommonSettings' default).
DEFAULT_HTTP_HOST = "127.0.0.1"

_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name may resolve to anything: assume it is reachable


def invoke_refusal(host: str, token: SecretStr | None) -> str | None:
    """Why /invoke must refuse every request on this bind (a 403), or None.

    Without a token, /invoke is open to whoever reaches the port, which is only this
    machine on a loopback bind.
    """
    if token is not None or is_loopback(host):
        return None
    return (
        f"/invoke is disabled: the server listens on {host}, which other machines can "
        "reach, and INVOKE_TOKEN is not set. Set INVOKE_TOKEN and send "
        "'Authorization: Bearer <token>', or listen on 127.0.0.1 (HTTP_HOST)."
    )


def bearer_credentials(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def authorization_failure(authorization: str | None, token: SecretStr) -> tuple[str, str] | None:
    """The detail and ``WWW-Authenticate`` challenge of a 401, or None when the
    ``Authorization`` header carries the token."""
    credentials = bearer_credentials(authorization)
    if credentials is None:
        return "send 'Authorization: Bearer <INVOKE_TOKEN>'", "Bearer"
    # Header values arrive as latin-1 text: compare the bytes, in constant time.
    if not hmac.compare_digest(
        credentials.encode("latin-1"), token.get_secret_value().encode("ascii")
    ):
        return "the bearer token does not match INVOKE_TOKEN", 'Bearer error="invalid_token"'
    return None


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_event(body: bytes) -> Event:
    """The event a request body holds; ValueError with the reason when it holds none."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"body is not UTF-8: byte 0x{body[exc.start]:02x} at position {exc.start}"
        ) from None
    if not text.strip():
        return {}
    try:
        event = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
            f"(character {exc.pos})"
        ) from None
    except RecursionError:
        raise ValueError("body is not usable JSON: it is nested too deeply") from None
    except ValueError as exc:  # NaN or Infinity, an integer of too many digits
        raise ValueError(f"body is not usable JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError(f"body must be a JSON object (the event), not {_JSON_KINDS[type(event)]}")
    return event


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
        self._settings: SettingsT | None = None
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
            self._settings = settings
        return self._state

    def settings(self) -> SettingsT:
        """The validated settings (built with the state, on first use)."""
        self.state()
        assert self._settings is not None
        return self._settings

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

    def http_app(self, host: str) -> FastAPI:
        """/healthz, /readyz, /metrics and ``POST /invoke``, guarded for a server on ``host``."""
        from fastapi.responses import JSONResponse
        from starlette.requests import Request
        from starlette.responses import Response

        from rnr.core.health import create_http_app, read_body

        state = self.state()
        token: SecretStr | None = getattr(self.settings(), "invoke_token", None)
        refusal = invoke_refusal(host, token)
        if refusal is not None:
            logger.warning(refusal, extra={"host": host})
        # Results as FastAPI would encode them (datetimes in ISO 8601, NaN as null).
        results = TypeAdapter(dict[str, Any])

        async def invoke(request: Request) -> Response:
            if refusal is not None:
                return JSONResponse({"detail": refusal}, status_code=403)
            if token is not None:
                failure = authorization_failure(request.headers.get("authorization"), token)
                if failure is not None:
                    detail, challenge = failure
                    return JSONResponse(
                        {"detail": detail}, status_code=401, headers={"WWW-Authenticate": challenge}
                    )
            body = await read_body(request, INVOKE_MAX_BODY_BYTES, "the /invoke body")
            try:
                event = parse_event(body)
            except ValueError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=400)
            try:
                result = await self.invoke(event)
            except Exception as exc:  # logged with its traceback by invoke()
                failed = f"{self.name} run failed ({type(exc).__name__}); see the service log"
                return JSONResponse({"detail": failed}, status_code=500)
            return Response(results.dump_json(result), media_type="application/json")

        app = create_http_app(self.name, self.registry, self._checks(state))
        # A plain route: the body is read here, within the limit, not parsed by FastAPI.
        app.add_route("/invoke", invoke, methods=["POST"])
        return app

    def serve(self, host: str | None = None, port: int | None = None) -> None:
        """Serve until SIGTERM on ``host`` (default HTTP_HOST) and ``port`` (HTTP_PORT)."""
        from rnr.core.http_server import serve

        settings = self.settings()
        bind_host = host if host else str(getattr(settings, "http_host", DEFAULT_HTTP_HOST))
        bind_port = port if port else int(getattr(settings, "http_port", 8080))
        serve(self.http_app(bind_host), host=bind_host, port=bind_port)

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=f"python -m services.{self.name}")
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("once", help="run the handler once and print its result (default)")
        serve = sub.add_parser("serve", help="serve /invoke, /healthz, /readyz, /metrics")
        serve.add_argument("--host", default=None, help="default: HTTP_HOST (127.0.0.1)")
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
