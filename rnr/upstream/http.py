"""GET JSON from the NOAA APIs with timeouts and retries that tell transient from permanent.

5xx answers, timeouts and dropped connections are retried with exponential backoff;
when they persist the caller gets ``UpstreamUnavailable`` (transient: try again later).
404 becomes ``UpstreamNotFound`` and other 4xx ``UpstreamRejected`` (permanent: the
same request will never succeed). A 200 whose body is not JSON is usually a proxy's or
CDN's temporary error page: it is retried like a 5xx and then raised as
``UpstreamGarbled``, transient, so the message retries; the caller decides when the
retries are spent (the worker then records the gauge as invalid data).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp

from rnr.core.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)


# Request timeout and rate limiting: the same request may succeed a little later.
RETRYABLE_4XX = frozenset({408, 429})


class UpstreamUnavailable(TransientError):
    """The API kept failing (5xx, timeout, connection) after every retry."""


class UpstreamGarbled(UpstreamUnavailable):
    """The API kept answering 200 with a body that is not JSON."""


class UpstreamNotFound(PermanentError):
    """The API answered 404 for this resource."""


class UpstreamRejected(PermanentError):
    """The API answered a 4xx other than 404, or JSON that is not the expected shape."""


class UpstreamClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        retries: int,
        backoff_seconds: float,
    ) -> None:
        self._session = session
        self._retries = retries
        self._backoff_seconds = backoff_seconds

    @staticmethod
    def open_session(*, user_agent: str, timeout_seconds: float) -> aiohttp.ClientSession:
        """weather.gov refuses requests without a descriptive User-Agent."""
        return aiohttp.ClientSession(
            headers={"User-Agent": user_agent},
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            raise_for_status=False,
        )

    async def get_json(self, url: str, *, accept: str = "application/json") -> Any:
        last_problem = ""
        garbled = False
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff_seconds * 2 ** (attempt - 1))
            try:
                async with self._session.get(url, headers={"Accept": accept}) as response:
                    if response.status >= 500 or response.status in RETRYABLE_4XX:
                        last_problem = f"HTTP {response.status}"
                        continue
                    if response.status == 404:
                        raise UpstreamNotFound(f"GET {url}: 404 Not Found")
                    if response.status >= 400:
                        detail = (await response.read())[:200].decode(errors="replace")
                        raise UpstreamRejected(f"GET {url}: HTTP {response.status}: {detail}")
                    raw = await response.read()
            except TimeoutError:
                last_problem = "timed out"
                continue
            except aiohttp.ClientError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            try:
                # JSON is UTF-8 (RFC 8259) whatever charset the server claims.
                return json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                garbled = True
                last_problem = f"HTTP 200 with a body that is not JSON ({str(exc)[:200]})"
                continue
        error = UpstreamGarbled if garbled else UpstreamUnavailable
        raise error(f"GET {url} failed {self._retries + 1} times, last: {last_problem}")
