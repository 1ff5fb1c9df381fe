"""The readiness-check contract, apart from the web framework so Lambda code stays light."""

from collections.abc import Awaitable, Callable

# A check returns normally when ready, or raises with the reason it is not.
ReadinessCheck = Callable[[], Awaitable[None]]
