"""The HTTP face every service shows: /healthz, /readyz and /metrics.

``/healthz`` says the process is alive (an orchestrator restarts it otherwise);
``/readyz`` says whether it can do its job now, one entry per dependency, and answers
503 when any is not ready, so an operator sees at once which dependency is missing.

No request body is read beyond ``MAX_REQUEST_BODY_BYTES`` (an endpoint may allow
less, as ``/invoke`` does through :func:`read_body`): a larger declared
``Content-Length`` is refused before anything is read, and a streamed (chunked) body is
cut off once it passes the limit. Refusals are 4xx with a JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rnr.core.readiness import ReadinessCheck

CHECK_TIMEOUT_SECONDS = 2.0
# The most any endpoint reads. The health endpoints take no body and /invoke allows
# far less; this bounds whatever else is ever mounted on the app.
MAX_REQUEST_BODY_BYTES = 1024 * 1024


def body_too_large(limit_bytes: int, what: str = "request body") -> HTTPException:
    """413, and the connection is closed: the rest of the body is never read."""
    return HTTPException(
        status_code=413,
        detail=f"{what} is larger than the limit of {limit_bytes} bytes",
        headers={"Connection": "close"},
    )


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The request's Content-Length, None without one; HTTPException 400 if malformed."""
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise HTTPException(400, detail="Content-Length is not a non-negative integer")
    return int(value)


async def read_body(request: Request, limit_bytes: int, what: str = "request body") -> bytes:
    """The whole body, or HTTPException 413 as soon as it is known to exceed the limit:
    from the declared Content-Length before reading, or while a chunked body streams."""
    declared = declared_length(request.headers)
    if declared is not None and declared > limit_bytes:
        raise body_too_large(limit_bytes, what)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise body_too_large(limit_bytes, what)
        chunks.append(chunk)
    return b"".join(chunks)


class BodySizeLimit:
    """ASGI middleware: no endpoint receives more than ``limit_bytes`` of body."""

    def __init__(self, app: ASGIApp, limit_bytes: int = MAX_REQUEST_BODY_BYTES) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        try:
            declared = declared_length(headers)
            if declared is not None and declared > self.limit_bytes:
                raise body_too_large(self.limit_bytes)
        except HTTPException as refusal:
            answer = JSONResponse(
                {"detail": refusal.detail}, refusal.status_code, headers=refusal.headers
            )
            await answer(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit_bytes:
                    # Raised in the endpoint that reads: the app's handler answers 413.
                    raise body_too_large(self.limit_bytes)
            return message

        await self.app(scope, limited_receive, send)


async def _run_check(check: ReadinessCheck) -> dict[str, Any]:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"ok": False, "detail": f"no answer within {CHECK_TIMEOUT_SECONDS}s"}
    except Exception as exc:
        return {"ok": False, "detail": str(exc) or type(exc).__name__}
    return {"ok": True}


def create_http_app(
    service: str,
    registry: CollectorRegistry,
    checks: Mapping[str, ReadinessCheck],
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
) -> FastAPI:
    app = FastAPI(title=f"rnr {service}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodySizeLimit, limit_bytes=max_body_bytes)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[name]) for name in names))
        report = dict(zip(names, results, strict=True))
        ready = all(result["ok"] for result in results)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "service": service, "checks": report},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
