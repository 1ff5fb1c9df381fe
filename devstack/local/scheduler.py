"""The local stand-in for EventBridge Scheduler: POST each service's /invoke on a period.

``SCHEDULER_TARGETS`` lists ``name=url@seconds`` entries separated by commas, e.g.
``producer=http://producer:8080/invoke@60,postproc=http://postproc:8080/invoke@300``.
``--once`` invokes every target a single time and exits non-zero if any failed.
With ``INVOKE_TOKEN`` set (the token the services require), every call sends it as
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from rnr.core.logging import setup_logging

logger = logging.getLogger("devstack.local.scheduler")


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    period_seconds: float


def invoke_headers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The headers of every call: the services' bearer token when one is configured."""
    token = environ.get("INVOKE_TOKEN", "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def parse_targets(spec: str) -> list[Target]:
    targets = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        try:
            name, rest = entry.split("=", 1)
            url, period = rest.rsplit("@", 1)
            target = Target(name.strip(), url.strip(), float(period))
            if not (target.name and target.url and math.isfinite(target.period_seconds)):
                raise ValueError
            if target.period_seconds <= 0:
                raise ValueError
            targets.append(target)
        except ValueError:
            raise ValueError(f"SCHEDULER_TARGETS entry {entry!r} is not name=url@seconds") from None
    if not targets:
        raise ValueError("SCHEDULER_TARGETS is empty: give at least one name=url@seconds")
    return targets


async def invoke(session: aiohttp.ClientSession, target: Target) -> bool:
    started = time.perf_counter()
    try:
        async with session.post(target.url, json={"source": "devstack.local.scheduler"}) as answer:
            body = await answer.text()
            ok = answer.status == 200
    except (aiohttp.ClientError, TimeoutError) as exc:
        ok, body = False, repr(exc)
    log = logger.info if ok else logger.error
    try:
        result: object = json.loads(body)
    except ValueError:
        result = body[:500]
    log(
        "invoked",
        extra={
            "target": target.name,
            "ok": ok,
            "result": result,
            "duration_seconds": round(time.perf_counter() - started, 3),
        },
    )
    return ok


async def run_forever(targets: list[Target]) -> None:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=300), headers=invoke_headers()
    ) as session:

        async def loop(target: Target) -> None:
            while True:
                await invoke(session, target)
                await asyncio.sleep(target.period_seconds)

        await asyncio.gather(*(loop(target) for target in targets))


async def run_once(targets: list[Target]) -> bool:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=300), headers=invoke_headers()
    ) as session:
        results = [await invoke(session, target) for target in targets]
    return all(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.local.scheduler")
    parser.add_argument("--once", action="store_true", help="invoke each target once and exit")
    args = parser.parse_args(argv)
    setup_logging("rnr-scheduler")
    try:
        targets = parse_targets(os.environ.get("SCHEDULER_TARGETS", ""))
    except ValueError as exc:
        print(f"rnr-scheduler: {exc}", file=sys.stderr)
        return 2
    if args.once:
        return 0 if asyncio.run(run_once(targets)) else 1
    asyncio.run(run_forever(targets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
