"""rnr.core.emf_export on real prometheus_client registries: deltas across flushes, label
dimensions, histograms as count/sum and value arrays, the EMF limits, the periodic task.

Every record is checked against the shape the CloudWatch EMF specification requires
(``EMF_SCHEMA`` below, written from the specification) and against the references it
makes: each dimension key and each metric name must be a member of the root object.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from rnr.core.emf_export import (
    MAX_DISTRIBUTION_VALUES,
    EmfExporter,
    PeriodicEmfExport,
    representative_values,
    unit_of,
)
from rnr.core.metrics import EMF_NAMESPACE

# The CloudWatch units a metric may declare (MetricDatum's StandardUnit).
UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
    "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
    "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]  # fmt: skip

# The EMF document structure: a root object with "_aws" (a Timestamp in epoch
# milliseconds and CloudWatchMetrics directives), each directive a Namespace, up to 30
# dimension keys per set and up to 100 metric definitions.
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "additionalProperties": False,
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "additionalProperties": False,
                        "properties": {
                            "Namespace": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 1024,
                                "pattern": r"^[a-zA-Z0-9._#:/-]+$",
                            },
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "Name": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 1024,
                                        },
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def assert_emf(document: dict[str, Any]) -> None:
    """Valid against the specification's shape, and every reference resolves."""
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                value = document[key]
                assert isinstance(value, str) and 1 <= len(value) <= 1024, (key, value)
        names = [metric["Name"] for metric in directive["Metrics"]]
        assert len(names) == len(set(names)), f"a metric twice in one record: {names}"
        for name in names:
            value = document[name]
            if isinstance(value, list):
                assert 1 <= len(value) <= 100, (name, len(value))
                assert all(isinstance(item, int | float) for item in value)
            else:
                assert isinstance(value, int | float) and not isinstance(value, bool)


def flush(exporter: EmfExporter) -> list[dict[str, Any]]:
    stream = io.StringIO()
    written = exporter.flush(stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == written
    documents = [json.loads(line) for line in lines]
    for document in documents:
        assert_emf(document)
    return documents


def value_of(documents: list[dict[str, Any]], name: str, **dimensions: str) -> Any:
    """The value of one metric for exactly these dimensions (service aside)."""
    found = []
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        [dimension_set] = directive["Dimensions"]
        if set(dimension_set) != {"service", *dimensions}:
            continue
        if any(document[key] != value for key, value in dimensions.items()):
            continue
        if name in document:
            found.append(document[name])
    assert found, f"{name} {dimensions} not in {documents}"
    if isinstance(found[0], list):
        return [item for chunk in found for item in chunk]
    [single] = found
    return single


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_counters_report_the_increase_since_the_last_flush(registry: CollectorRegistry) -> None:
    messages = Counter("rnr_worker_messages_total", "m", ["outcome"], registry=registry)
    messages.labels("acked").inc(3)
    messages.labels("retried")
    exporter = EmfExporter(registry, "worker")

    first = flush(exporter)
    assert value_of(first, "rnr_worker_messages_total", outcome="acked") == 3
    assert value_of(first, "rnr_worker_messages_total", outcome="retried") == 0

    messages.labels("acked").inc(2)
    messages.labels("retried").inc()
    second = flush(exporter)
    assert value_of(second, "rnr_worker_messages_total", outcome="acked") == 2
    assert value_of(second, "rnr_worker_messages_total", outcome="retried") == 1

    third = flush(exporter)
    assert value_of(third, "rnr_worker_messages_total", outcome="acked") == 0
    # The deltas add up to what /metrics shows.
    assert messages.labels("acked")._value.get() == 5


def test_every_record_carries_the_service_and_namespace(registry: CollectorRegistry) -> None:
    Gauge("rnr_worker_in_flight_messages", "g", registry=registry).set(2)
    [document] = flush(EmfExporter(registry, "worker"))
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == EMF_NAMESPACE
    assert directive["Dimensions"] == [["service"]]
    assert document["service"] == "worker"
    assert directive["Metrics"] == [{"Name": "rnr_worker_in_flight_messages", "Unit": "None"}]


def test_bounded_labels_become_dimensions_and_others_are_summed_away(
    registry: CollectorRegistry,
) -> None:
    gauges = Counter("rnr_worker_gauges_total", "g", ["outcome", "reason"], registry=registry)
    gauges.labels("routed", "").inc(4)
    gauges.labels("skipped", "no_forecast").inc(2)
    errors = Counter("rnr_worker_unexpected_errors_total", "e", ["error_type"], registry=registry)
    errors.labels("KeyError").inc()
    errors.labels("ZeroDivisionError").inc(2)

    documents = flush(EmfExporter(registry, "worker"))
    # An empty label value cannot be a CloudWatch dimension value: it is written "none".
    assert value_of(documents, "rnr_worker_gauges_total", outcome="routed", reason="none") == 4
    assert (
        value_of(documents, "rnr_worker_gauges_total", outcome="skipped", reason="no_forecast") == 2
    )
    # error_type is open-ended: one series, the sum, so no exception creates a metric.
    assert value_of(documents, "rnr_worker_unexpected_errors_total") == 3
    for document in documents:
        assert "error_type" not in document


def test_gauges_report_their_current_value_not_a_delta(registry: CollectorRegistry) -> None:
    active = Gauge("rnr_worker_consumer_active", "a", registry=registry)
    active.set(1)
    exporter = EmfExporter(registry, "worker")
    assert value_of(flush(exporter), "rnr_worker_consumer_active") == 1
    assert value_of(flush(exporter), "rnr_worker_consumer_active") == 1
    active.set(0)
    assert value_of(flush(exporter), "rnr_worker_consumer_active") == 0


def test_a_histogram_becomes_count_sum_increases_and_bucket_values(
    registry: CollectorRegistry,
) -> None:
    seconds = Histogram(
        "rnr_worker_processing_seconds", "p", registry=registry, buckets=(0.1, 1, 10)
    )
    for observed in (0.05, 0.5, 0.7, 3.0, 60.0):
        seconds.observe(observed)
    exporter = EmfExporter(registry, "worker")

    first = flush(exporter)
    assert value_of(first, "rnr_worker_processing_seconds_count") == 5
    assert value_of(first, "rnr_worker_processing_seconds_sum") == pytest.approx(64.25)
    # One value per observation, its bucket's upper bound; +Inf as the largest bound.
    assert sorted(value_of(first, "rnr_worker_processing_seconds")) == [0.1, 1, 1, 10, 10]
    units = {
        metric["Name"]: metric["Unit"]
        for document in first
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    }
    assert units == {
        "rnr_worker_processing_seconds_count": "Count",
        "rnr_worker_processing_seconds_sum": "Seconds",
        "rnr_worker_processing_seconds": "Seconds",
    }

    seconds.observe(0.2)
    second = flush(exporter)
    assert value_of(second, "rnr_worker_processing_seconds_count") == 1
    assert value_of(second, "rnr_worker_processing_seconds_sum") == pytest.approx(0.2)
    assert value_of(second, "rnr_worker_processing_seconds") == [1]

    # Nothing observed: the count says 0 and no empty array is written (EMF wants 1-100).
    third = flush(exporter)
    assert value_of(third, "rnr_worker_processing_seconds_count") == 0
    assert all("rnr_worker_processing_seconds" not in document for document in third)


def test_a_summary_reports_count_and_sum_increases(registry: CollectorRegistry) -> None:
    summary = Summary("rnr_test_request_seconds", "s", registry=registry)
    summary.observe(2)
    summary.observe(3)
    documents = flush(EmfExporter(registry, "worker"))
    assert value_of(documents, "rnr_test_request_seconds_count") == 2
    assert value_of(documents, "rnr_test_request_seconds_sum") == 5


def test_more_than_100_observations_continue_in_further_records(
    registry: CollectorRegistry,
) -> None:
    seconds = Histogram("rnr_worker_routing_seconds", "r", registry=registry, buckets=(1, 2))
    for _ in range(250):
        seconds.observe(0.5)
    documents = flush(EmfExporter(registry, "worker"))
    chunks = [
        d["rnr_worker_routing_seconds"] for d in documents if "rnr_worker_routing_seconds" in d
    ]
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    assert value_of(documents, "rnr_worker_routing_seconds_count") == 250


def test_a_burst_is_described_by_at_most_the_value_cap_in_proportion(
    registry: CollectorRegistry,
) -> None:
    seconds = Histogram("rnr_worker_routing_seconds", "r", registry=registry, buckets=(1, 2, 5))
    for _ in range(3000):
        seconds.observe(0.5)
    for _ in range(1000):
        seconds.observe(1.5)
    seconds.observe(4)  # one slow outlier still shows
    documents = flush(EmfExporter(registry, "worker"))
    values = value_of(documents, "rnr_worker_routing_seconds")
    assert len(values) == MAX_DISTRIBUTION_VALUES
    assert values.count(5) == 1
    assert abs(values.count(1) - 750) <= 1 and abs(values.count(2) - 250) <= 1
    assert value_of(documents, "rnr_worker_routing_seconds_count") == 4001  # exact


def test_representative_values_without_a_finite_bucket_are_none() -> None:
    assert representative_values([(float("inf"), 3)]) == []
    assert representative_values([(1.0, 0), (float("inf"), 0)]) == []


def test_more_than_100_metrics_of_one_dimension_set_are_split(
    registry: CollectorRegistry,
) -> None:
    for index in range(130):
        Gauge(f"rnr_test_gauge_{index}", "g", registry=registry).set(index)
    documents = flush(EmfExporter(registry, "worker"))
    sizes = [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in documents]
    assert sorted(sizes) == [30, 100]
    assert value_of(documents, "rnr_test_gauge_129") == 129


class ResettingCounter(Collector):
    """A counter whose total we set: prometheus_client's Counter cannot go back."""

    def __init__(self) -> None:
        self.total = 0.0

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("rnr_test_restarts", "r", labels=["outcome"])
        family.add_metric(["ok"], self.total)
        yield family


def test_a_counter_that_fell_is_reported_whole(registry: CollectorRegistry) -> None:
    collector = ResettingCounter()
    registry.register(collector)
    exporter = EmfExporter(registry, "worker")
    collector.total = 10
    assert value_of(flush(exporter), "rnr_test_restarts_total", outcome="ok") == 10
    collector.total = 4  # the source restarted from zero
    assert value_of(flush(exporter), "rnr_test_restarts_total", outcome="ok") == 4


def test_the_schema_names_histograms_before_their_first_observation(
    registry: CollectorRegistry,
) -> None:
    Histogram("rnr_worker_routing_seconds", "r", registry=registry)
    messages = Counter("rnr_worker_messages_total", "m", ["outcome"], registry=registry)
    messages.labels("acked").inc()
    exporter = EmfExporter(registry, "worker")
    assert exporter.schema() == {
        ("rnr_worker_routing_seconds", ()),
        ("rnr_worker_routing_seconds_count", ()),
        ("rnr_worker_routing_seconds_sum", ()),
        ("rnr_worker_messages_total", (("outcome", "acked"),)),
    }
    # Asking for the schema does not use up the increase.
    assert value_of(flush(exporter), "rnr_worker_messages_total", outcome="acked") == 1


@pytest.mark.parametrize(
    ("name", "counted", "unit"),
    [
        ("rnr_worker_processing_seconds", False, "Seconds"),
        ("rnr_worker_processing_seconds_sum", True, "Seconds"),
        ("rnr_test_payload_bytes", False, "Bytes"),
        ("rnr_worker_messages_total", True, "Count"),
        ("rnr_worker_in_flight_messages", False, "None"),
    ],
)
def test_units_follow_the_naming_convention(name: str, counted: bool, unit: str) -> None:
    assert unit_of(name, counted=counted) == unit


async def test_the_periodic_export_flushes_on_its_interval_and_once_at_stop(
    registry: CollectorRegistry,
) -> None:
    messages = Counter("rnr_worker_messages_total", "m", ["outcome"], registry=registry)
    stream = io.StringIO()
    export = PeriodicEmfExport(EmfExporter(registry, "worker"), 0.05, stream)
    export.start()
    messages.labels("acked").inc()
    await asyncio.sleep(0.3)
    periodic = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(periodic) >= 3  # at least three flushes in 0.3 s at 0.05 s
    assert sum(value_of([d], "rnr_worker_messages_total", outcome="acked") for d in periodic) == 1

    messages.labels("acked").inc(7)  # after the last periodic flush, before the stop
    await export.stop()
    final = json.loads(stream.getvalue().splitlines()[-1])
    assert value_of([final], "rnr_worker_messages_total", outcome="acked") == 7
    lines = len(stream.getvalue().splitlines())
    await asyncio.sleep(0.15)
    assert len(stream.getvalue().splitlines()) == lines  # stopped: nothing more


async def test_an_interval_of_zero_exports_nothing(registry: CollectorRegistry) -> None:
    Counter("rnr_worker_messages_total", "m", registry=registry).inc()
    stream = io.StringIO()
    export = PeriodicEmfExport(EmfExporter(registry, "worker"), 0, stream)
    assert not export.enabled
    export.start()
    await asyncio.sleep(0.05)
    await export.stop()
    assert stream.getvalue() == ""


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stdout closed")


async def test_a_failed_flush_is_logged_and_the_export_goes_on(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    Gauge("rnr_worker_consumer_active", "a", registry=registry).set(1)
    export = PeriodicEmfExport(EmfExporter(registry, "worker"), 0.02, BrokenStream())
    with caplog.at_level(logging.ERROR, logger="rnr.core.emf_export"):
        export.start()
        await asyncio.sleep(0.1)
        await export.stop()
    failures = [r for r in caplog.records if "could not write the EMF metrics" in r.message]
    assert len(failures) >= 2  # it kept trying after the first failure
