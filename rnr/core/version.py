"""The version of the installed package, for outputs that say which code wrote them."""

from __future__ import annotations

import functools

DISTRIBUTION = "rnr-pipeline"
UNKNOWN_VERSION = "unknown"


@functools.cache
def package_version() -> str:
    """The installed ``rnr-pipeline`` version (``pyproject.toml``), read once; ``unknown``
    when the distribution is not installed (a source tree on ``PYTHONPATH``)."""
    import importlib.metadata  # here, not at import: cold starts import this module

    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
