"""The committed Grafana dashboard, checked without Grafana or Prometheus.

Its queries name only metrics the services register, carry no Grafana variable (the
end-to-end test evaluates them as they are, tests/e2e/test_dashboard_queries.py), and
tell the work queue from the dead-letter queue the way the topology names them.
"""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from devstack.observability.dashboard import load_dashboard, panel_queries, panels
from rnr.messaging.consumer import ConsumerMetrics
from rnr.messaging.topology import Topology
from services.autoscaler.autoscaler import AutoscalerMetrics
from services.postproc import postproc
from services.postproc.settings import PostprocSettings
from services.producer.producer import ProducerMetrics
from services.worker.processing import ReplaceAndRouteProcessor

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def registered_series_names() -> set[str]:
    """The series names the services' metric classes register, as Prometheus stores them."""
    registry = CollectorRegistry()
    ProducerMetrics(registry)
    AutoscalerMetrics(registry)
    ConsumerMetrics(registry)  # the worker's consumer
    ReplaceAndRouteProcessor(
        nws=None,  # type: ignore[arg-type]
        nwps=None,  # type: ignore[arg-type]
        network=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        bucket="rnr-output",
        prefix="rnr",
        gauge_concurrency=1,
        registry=registry,
    )
    postproc.setup(
        PostprocSettings(
            output_bucket="rnr-output", input_bucket="rnr-input", hydrofabric_location="hf"
        ),
        registry,
    )
    return {
        f"{family.name}{suffix}"
        for family in registry.collect()
        for suffix in SUFFIXES[family.type]
    }


def test_every_panel_has_a_title_queries_and_the_provisioned_datasource() -> None:
    found = panels(load_dashboard())
    assert len(found) >= 12
    titles = [panel["title"] for panel in found]
    assert len(set(titles)) == len(titles), "two panels share a title"
    for panel in found:
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "rnr-prometheus"}


def test_every_query_names_only_metrics_the_services_register() -> None:
    registered = registered_series_names()
    assert "rnr_worker_routing_seconds_bucket" in registered
    for query in panel_queries(load_dashboard()):
        assert query.metric_names, f"{query.panel} {query.ref_id} names no metric"
        unknown = query.metric_names - registered
        assert not unknown, f"{query.panel} {query.ref_id}: {unknown} is registered nowhere"


def test_queries_are_plain_promql_without_grafana_variables() -> None:
    for query in panel_queries(load_dashboard()):
        assert "$" not in query.expr, f"{query.panel}: {query.expr}"


def test_the_dashboard_covers_each_stage_of_the_pipeline() -> None:
    named = set().union(*(query.metric_names for query in panel_queries(load_dashboard())))
    for wanted in (
        "rnr_producer_products_total",
        "rnr_autoscaler_queue_ready_messages",
        "rnr_autoscaler_queue_unacked_messages",
        "rnr_worker_gauges_total",
        "rnr_worker_routing_seconds_bucket",
        "rnr_worker_processing_seconds_bucket",
        "rnr_autoscaler_tasks",
        "rnr_autoscaler_decisions_total",
        "rnr_postproc_table_rows",
        "rnr_postproc_withdrawn_rows_total",
        "rnr_postproc_objects_total",
    ):
        assert wanted in named, wanted


def queue_matchers(expr: str) -> list[tuple[str, str]]:
    """The (operator, regex) of each ``queue=~"..."`` / ``queue!~"..."`` matcher."""
    # A PromQL double-quoted string escapes as JSON does for these characters.
    return [
        (op, json.loads(quoted))
        for op, quoted in re.findall(r'queue(=~|!~)("(?:[^"\\]|\\.)*")', expr)
    ]


def test_the_queue_panels_tell_the_dead_letter_queue_from_the_work_queue() -> None:
    topology = Topology("rnr", "rnr-local-1a2b.products", "quorum", (5.0,))
    depth = [q for q in panel_queries(load_dashboard()) if "rnr_autoscaler_queue_" in q.expr]
    assert len(depth) == 4
    for query in depth:
        [(op, regex)] = queue_matchers(query.expr)
        is_dlq_panel = "dead-letter" in query.panel.lower()
        # Prometheus anchors label regexes at both ends: fullmatch.
        matches_dlq = re.fullmatch(regex, topology.dead_letter_queue) is not None
        matches_work = re.fullmatch(regex, topology.queue) is not None
        assert matches_dlq and not matches_work, regex
        assert op == ("=~" if is_dlq_panel else "!~"), query
