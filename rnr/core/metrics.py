"""Metric helpers: Prometheus registries passed in, and CloudWatch EMF lines for Lambda.

Each service builds its own ``CollectorRegistry`` at start-up (no global registry), so
tests and several services in one process never share counters.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import TextIO

EMF_NAMESPACE = "rnr-pipeline"


def emf_line(
    service: str,
    values: Mapping[str, float],
    *,
    unit: str = "Count",
    namespace: str = EMF_NAMESPACE,
    properties: Mapping[str, object] | None = None,
) -> str:
    """One CloudWatch Embedded Metric Format record: CloudWatch Logs turns it into metrics."""
    record: dict[str, object] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name in values],
                }
            ],
        },
        "service": service,
        **dict(properties or {}),
        **{name: value for name, value in values.items()},
    }
    return json.dumps(record, default=str)


def emit_emf(service: str, values: Mapping[str, float], stream: TextIO | None = None) -> None:
    print(emf_line(service, values), file=stream or sys.stdout, flush=True)
