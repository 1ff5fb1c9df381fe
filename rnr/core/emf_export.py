"""A Prometheus registry, periodically written as CloudWatch Embedded Metric Format lines.

Why: in AWS nothing scrapes a Fargate task's ``/metrics``, but its stdout goes to
CloudWatch Logs (the ``awslogs`` driver), and CloudWatch Logs turns every EMF record it
receives into metrics. So the worker keeps one set of metrics, its ``CollectorRegistry``,
and this module translates that registry into EMF records; there is no second set of
counters to keep in step.

The translation, per metric family:

- counter: the increase since the previous flush (a Prometheus counter only grows, so
  CloudWatch's ``Sum`` over a period is the number of events in it);
- gauge: the current value;
- histogram: ``<name>_count`` and ``<name>_sum`` increases (``Sum`` of each, and their
  ratio, the mean, aggregate exactly over any period and any number of tasks), and
  ``<name>`` as an EMF array of values, one per observation since the previous flush,
  each the upper bound of its bucket (``+Inf`` observations as the largest finite bound),
  from which CloudWatch computes percentiles at the buckets' resolution;
- summary: ``_count`` and ``_sum`` increases; other types are not exported.

Labels become dimensions only where their values are bounded (``DIMENSION_LABELS``);
other labels (``error_type``) are summed away, so a new exception type never creates a
new CloudWatch metric. An empty label value is written as ``none``: CloudWatch rejects an
empty dimension value. Every record carries the ``service`` dimension, as the Lambdas'.

EMF limits respected (the CloudWatch EMF specification): at most 100 metrics per record
and 100 values per array; longer arrays continue in further records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from rnr.core.metrics import EMF_NAMESPACE

logger = logging.getLogger(__name__)

# Labels whose values come from a fixed list in the code: safe as CloudWatch dimensions.
DIMENSION_LABELS = frozenset({"outcome", "reason", "kind", "queue", "direction", "rule", "result"})
EMPTY_LABEL_VALUE = "none"
MAX_METRICS_PER_RECORD = 100
MAX_VALUES_PER_METRIC = 100
# At most this many values describe one histogram's distribution per flush; beyond it
# the values are spread over the buckets in proportion (``_count`` stays exact).
MAX_DISTRIBUTION_VALUES = 1000

Dimensions = tuple[tuple[str, str], ...]
Value = float | list[float]


@dataclass(frozen=True)
class EmfPoint:
    """One value of one metric for one set of dimensions, as it goes into a record."""

    name: str
    dimensions: Dimensions
    value: Value
    unit: str


def unit_of(name: str, *, counted: bool) -> str:
    """The CloudWatch unit a Prometheus name's suffix states (the naming convention)."""
    if name.endswith("_seconds") or name.endswith("_seconds_sum"):
        return "Seconds"
    if name.endswith("_bytes") or name.endswith("_bytes_sum"):
        return "Bytes"
    return "Count" if counted else "None"


class EmfExporter:
    """Turns a registry into EMF records; remembers what it reported, for deltas."""

    def __init__(
        self,
        registry: CollectorRegistry,
        service: str,
        *,
        namespace: str = EMF_NAMESPACE,
        dimension_labels: Iterable[str] = DIMENSION_LABELS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._service = service
        self._namespace = namespace
        self._dimension_labels = frozenset(dimension_labels)
        self._clock = clock
        self._reported: dict[tuple[str, Dimensions], float] = {}

    def _dimensions(self, labels: Mapping[str, str]) -> Dimensions:
        return tuple(
            sorted(
                (key, value or EMPTY_LABEL_VALUE)
                for key, value in labels.items()
                if key in self._dimension_labels
            )
        )

    def _delta(self, name: str, dimensions: Dimensions, total: float) -> float:
        """The increase since the last flush; a total that fell (a reset) counts whole."""
        previous = self._reported.get((name, dimensions), 0.0)
        self._reported[(name, dimensions)] = total
        return total - previous if total >= previous else total

    def _summed(self, family: Metric, sample_name: str) -> dict[Dimensions, float]:
        totals: dict[Dimensions, float] = defaultdict(float)
        for sample in family.samples:
            if sample.name == sample_name:
                totals[self._dimensions(sample.labels)] += sample.value
        return totals

    def points(self) -> list[EmfPoint]:
        """What the next flush reports; calling it advances the counters' baseline."""
        found: list[EmfPoint] = []
        for family in self._registry.collect():
            if family.type == "counter":
                found.extend(self._counter(family))
            elif family.type == "gauge":
                found.extend(self._gauge(family))
            elif family.type in {"histogram", "summary"}:
                found.extend(self._counted_sum(family))
                if family.type == "histogram":
                    found.extend(self._distribution(family))
        return found

    def _counter(self, family: Metric) -> Iterable[EmfPoint]:
        name = f"{family.name}_total"
        for dimensions, total in self._summed(family, name).items():
            yield EmfPoint(name, dimensions, self._delta(name, dimensions, total), "Count")

    def _gauge(self, family: Metric) -> Iterable[EmfPoint]:
        unit = unit_of(family.name, counted=False)
        for dimensions, value in self._summed(family, family.name).items():
            yield EmfPoint(family.name, dimensions, value, unit)

    def _counted_sum(self, family: Metric) -> Iterable[EmfPoint]:
        for suffix in ("_count", "_sum"):
            name = f"{family.name}{suffix}"
            unit = unit_of(name, counted=True)
            for dimensions, total in self._summed(family, name).items():
                # Rounded: a difference of float sums carries noise in its last digits.
                delta = round(self._delta(name, dimensions, total), 9)
                yield EmfPoint(name, dimensions, delta, unit)

    def _distribution(self, family: Metric) -> Iterable[EmfPoint]:
        """Bucket increases as representative values (see the module docstring)."""
        cumulative: dict[Dimensions, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for sample in family.samples:
            if sample.name == f"{family.name}_bucket":
                bound = float(sample.labels["le"])
                cumulative[self._dimensions(sample.labels)][bound] += sample.value
        unit = unit_of(family.name, counted=False)
        for dimensions, by_bound in cumulative.items():
            # Increases of the cumulative counts ("at or below bound") since the last flush.
            increases = [
                (bound, round(self._delta(f"{family.name}_bucket:{bound}", dimensions, total)))
                for bound, total in sorted(by_bound.items())
            ]
            values = representative_values(_non_cumulative(increases))
            if values:
                yield EmfPoint(family.name, dimensions, values, unit)

    def schema(self) -> set[tuple[str, Dimensions]]:
        """Every (metric name, dimensions) the records can carry, a histogram's values
        included before its first observation: what a dashboard or alarm may read.
        Leaves this exporter's deltas alone."""
        probe = EmfExporter(
            self._registry,
            self._service,
            namespace=self._namespace,
            dimension_labels=self._dimension_labels,
        )
        names = {(point.name, point.dimensions) for point in probe.points()}
        for family in self._registry.collect():
            if family.type == "histogram":
                for sample in family.samples:
                    if sample.name == f"{family.name}_count":
                        names.add((family.name, self._dimensions(sample.labels)))
        return names

    def records(self) -> list[dict[str, object]]:
        """The EMF documents of one flush: one per dimension set (more when long)."""
        grouped: dict[Dimensions, list[EmfPoint]] = defaultdict(list)
        for point in self.points():
            grouped[point.dimensions].append(point)
        timestamp = int(self._clock() * 1000)
        documents = []
        for dimensions, points in grouped.items():
            for batch in _batches(points):
                documents.append(self._document(timestamp, dimensions, batch))
        return documents

    def _document(
        self, timestamp: int, dimensions: Dimensions, batch: list[EmfPoint]
    ) -> dict[str, object]:
        return {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [["service", *(key for key, _ in dimensions)]],
                        "Metrics": [{"Name": point.name, "Unit": point.unit} for point in batch],
                    }
                ],
            },
            "service": self._service,
            **dict(dimensions),
            **{point.name: point.value for point in batch},
        }

    def flush(self, stream: TextIO | None = None) -> int:
        """Write one flush's records, one JSON line each; returns how many."""
        out = stream or sys.stdout
        documents = self.records()
        for document in documents:
            # One write per line: log lines from other threads never land inside it.
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
        out.flush()
        return len(documents)


def _non_cumulative(per_bucket: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Prometheus buckets count everything at or below their bound; per-bucket counts."""
    result: list[tuple[float, int]] = []
    below = 0
    for bound, cumulative in per_bucket:
        result.append((bound, max(cumulative - below, 0)))
        below = max(cumulative, below)
    return result


def representative_values(buckets: list[tuple[float, int]]) -> list[float]:
    """One value per observation (the bucket's upper bound), at most
    ``MAX_DISTRIBUTION_VALUES``, shared out by largest remainder beyond it, every
    non-empty bucket keeping at least one."""
    finite = [bound for bound, _ in buckets if math.isfinite(bound)]
    if not finite:
        return []
    counted = [(bound if math.isfinite(bound) else max(finite), n) for bound, n in buckets if n]
    total = sum(n for _, n in counted)
    if total > MAX_DISTRIBUTION_VALUES:
        shares = [(bound, n * MAX_DISTRIBUTION_VALUES / total) for bound, n in counted]
        whole = [(bound, max(1, math.floor(share))) for bound, share in shares]
        spare = MAX_DISTRIBUTION_VALUES - sum(n for _, n in whole)
        by_remainder = sorted(
            range(len(shares)), key=lambda i: shares[i][1] - math.floor(shares[i][1]), reverse=True
        )
        for index in by_remainder[: max(spare, 0)]:
            whole[index] = (whole[index][0], whole[index][1] + 1)
        counted = whole
    return [bound for bound, n in counted for _ in range(n)]


def _batches(points: list[EmfPoint]) -> list[list[EmfPoint]]:
    """Points packed into records of at most 100 metrics, each metric once per record,
    arrays cut into pieces of at most 100 values."""
    pieces: list[EmfPoint] = []
    for point in points:
        if isinstance(point.value, list):
            for start in range(0, len(point.value), MAX_VALUES_PER_METRIC):
                chunk = point.value[start : start + MAX_VALUES_PER_METRIC]
                pieces.append(EmfPoint(point.name, point.dimensions, chunk, point.unit))
        else:
            pieces.append(point)
    batches: list[list[EmfPoint]] = []
    for piece in pieces:
        for batch in batches:
            if len(batch) < MAX_METRICS_PER_RECORD and all(p.name != piece.name for p in batch):
                batch.append(piece)
                break
        else:
            batches.append([piece])
    return batches


class PeriodicEmfExport:
    """Flushes an exporter every ``interval_seconds`` and once more at ``stop()``.

    An interval of 0 turns it off (the local default: there the registry is scraped).
    A failed flush is logged and never stops the service: metrics are not worth a crash.
    """

    def __init__(
        self, exporter: EmfExporter, interval_seconds: float, stream: TextIO | None = None
    ) -> None:
        self._exporter = exporter
        self._interval = interval_seconds
        self._stream = stream
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._interval > 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="emf-export")
            logger.info(
                "metrics exported as EMF lines on stdout",
                extra={"interval_seconds": self._interval},
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.flush()

    def flush(self) -> None:
        try:
            self._exporter.flush(self._stream)
        except Exception:
            logger.exception("could not write the EMF metrics; /metrics still serves them")

    async def stop(self) -> None:
        """The last flush: what happened since the previous one, the drain included."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self.flush()
