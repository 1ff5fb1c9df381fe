"""The CloudWatch dashboard and alarms read only metrics the code emits, under the names
and dimensions it emits them, and show every panel of the local Grafana dashboard.

What the code emits is collected from the code, not from a list kept here:
- the Lambdas: every ``emit_emf(service, {...})`` call, read with ``ast`` (a ``**counts``
  spread resolved to the dict its ``counts()`` method returns), with the dimensions of
  ``rnr.core.metrics.emf_line``;
- the worker: its real Prometheus registry (the objects ``WorkerRuntime`` and the
  processor register), passed through ``rnr.core.emf_export.EmfExporter.schema``;
- the log metric filters of the observability module.
AWS's own metrics (Amazon MQ, Container Insights, ECS, Lambda, SQS) cannot come from our
code: ``AWS_METRICS`` lists the ones used, with their dimensions, from AWS's metric
documentation.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rnr.core.emf_export import EmfExporter
from rnr.core.metrics import EMF_NAMESPACE, emf_line
from tests.conftest import REPO_ROOT
from tests.support.deploy import MODULES, TERRAFORM, locals_of, resources

OBSERVABILITY = MODULES / "observability"
GRAFANA = REPO_ROOT / "devstack" / "observability" / "grafana" / "dashboards" / "rnr-pipeline.json"
OWN = "${var.metric_namespace}"
LAMBDAS = ("producer", "autoscaler", "postproc")

# AWS-vended metrics the module reads: (namespace, metric) -> dimension names.
AWS_METRICS = {
    ("AWS/AmazonMQ", "MessageCount"): {"Broker"},
    ("AWS/AmazonMQ", "MessageReadyCount"): {"Broker"},
    ("AWS/AmazonMQ", "MessageUnacknowledgedCount"): {"Broker"},
    ("AWS/AmazonMQ", "ConnectionCount"): {"Broker"},
    ("AWS/AmazonMQ", "ConsumerCount"): {"Broker"},
    ("AWS/AmazonMQ", "SystemCpuUtilization"): {"Broker"},
    ("ECS/ContainerInsights", "RunningTaskCount"): {"ClusterName", "ServiceName"},
    ("ECS/ContainerInsights", "DesiredTaskCount"): {"ClusterName", "ServiceName"},
    ("AWS/ECS", "CPUUtilization"): {"ClusterName", "ServiceName"},
    ("AWS/ECS", "MemoryUtilization"): {"ClusterName", "ServiceName"},
    ("AWS/Lambda", "Errors"): {"FunctionName"},
    ("AWS/Lambda", "Duration"): {"FunctionName"},
    ("AWS/Lambda", "Invocations"): {"FunctionName"},
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): {"QueueName"},
}

Dimensions = frozenset[tuple[str, str]]


# --------------------------------------------------------------------- what the code emits


def _dict_keys(node: ast.AST, module: ast.Module) -> set[str]:
    """String keys of the dict displays in ``node``; ``**name`` spreads followed to the
    dict returned by the method ``name`` was assigned from (``counts = s.counts()``)."""
    keys: set[str] = set()
    for inner in ast.walk(node):
        if not isinstance(inner, ast.Dict):
            continue
        for key, value in zip(inner.keys, inner.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
            elif key is None and isinstance(value, ast.Name):
                keys |= _spread_keys(value.id, module)
    return keys


def _spread_keys(name: str, module: ast.Module) -> set[str]:
    methods = {
        assign.value.func.attr
        for assign in ast.walk(module)
        if isinstance(assign, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in assign.targets)
        and isinstance(assign.value, ast.Call)
        and isinstance(assign.value.func, ast.Attribute)
    }
    assert methods, f"cannot tell what **{name} holds"
    keys: set[str] = set()
    for function in ast.walk(module):
        if isinstance(function, ast.FunctionDef) and function.name in methods:
            for ret in ast.walk(function):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    keys |= _dict_keys(ret.value, module)
    assert keys, f"no dict returned by {methods}"
    return keys


@cache
def lambda_emf_metrics() -> dict[str, set[str]]:
    """Service -> the metric names its ``emit_emf`` calls write."""
    found: dict[str, set[str]] = {}
    for service in LAMBDAS:
        for path in sorted((REPO_ROOT / "services" / service).glob("*.py")):
            module = ast.parse(path.read_text())
            for call in ast.walk(module):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id == "emit_emf"
                ):
                    first, values = call.args[:2]
                    assert isinstance(first, ast.Constant), f"{path}: service must be literal"
                    found.setdefault(first.value, set()).update(_dict_keys(values, module))
    return found


def lambda_dimension_names() -> list[list[str]]:
    record = json.loads(emf_line("x", {"m": 1}))
    return record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


@cache
def worker_schema() -> set[tuple[str, Dimensions]]:
    """The worker's real registry, as its EMF export names it."""
    from services.worker.app import WorkerRuntime
    from services.worker.processing import ReplaceAndRouteProcessor
    from services.worker.settings import WorkerSettings

    settings = WorkerSettings(
        output_bucket="outputs",
        input_bucket="inputs",
        hydrofabric_location="hydrofabric.gpkg",
        rabbitmq_url="amqp://guest:guest@127.0.0.1:5672/",
    )
    registry = CollectorRegistry()
    WorkerRuntime(settings, registry)  # consumer metrics, scale-in protection
    # The processor registers its metrics in its constructor, which only stores its
    # clients: they are not used here.
    ReplaceAndRouteProcessor(
        nws=None,  # type: ignore[arg-type]
        nwps=None,  # type: ignore[arg-type]
        network=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        bucket="outputs",
        prefix="replace_and_route",
        gauge_concurrency=1,
        registry=registry,
    )
    return {
        (name, frozenset({("service", "worker"), *dimensions}))
        for name, dimensions in EmfExporter(registry, "worker").schema()
    }


@cache
def emitted() -> set[tuple[str, str, Dimensions]]:
    """(namespace, metric, dimensions) the pipeline writes to its own namespace."""
    result: set[tuple[str, str, Dimensions]] = set()
    assert lambda_dimension_names() == [["service"]]
    for service, names in lambda_emf_metrics().items():
        for name in names:
            result.add((OWN, name, frozenset({("service", service)})))
    for name, dimensions in worker_schema():
        result.add((OWN, name, dimensions))
    for (kind, _), body in resources(OBSERVABILITY).items():
        if kind == "aws_cloudwatch_log_metric_filter":
            [transformation] = body["metric_transformation"]
            assert transformation["namespace"] == OWN
            result.add((OWN, transformation["name"], frozenset()))
    return result


# ------------------------------------------------------------- what Terraform reads


@dataclass(frozen=True)
class Read:
    where: str
    namespace: str
    metric: str
    dimensions: dict[str, str]


def unescape(text: str) -> str:
    return text.replace('\\"', '"')


def resolve(value: str) -> str:
    """The module's references that name a metric, by what they stand for."""
    scope = locals_of(OBSERVABILITY)
    if value.startswith("${local.") and value.endswith("}"):
        return unescape(scope[value[len("${local.") : -1]])
    reference = "${aws_cloudwatch_log_metric_filter.worker_errors.metric_transformation[0].name}"
    if value == reference:
        body = resources(OBSERVABILITY)[("aws_cloudwatch_log_metric_filter", "worker_errors")]
        return body["metric_transformation"][0]["name"]
    return value


def widget_entries() -> Iterator[tuple[dict[str, Any], list[Any]]]:
    for widget in locals_of(OBSERVABILITY)["metric_widgets"]:
        for entry in widget["metrics"]:
            assert isinstance(entry, list), f"{widget['title']}: entries must be written out"
            yield widget, entry


def dashboard_reads() -> list[Read]:
    reads = []
    for widget, entry in widget_entries():
        if len(entry) == 1 and isinstance(entry[0], dict):
            continue  # an expression: checked below
        parts = [part for part in entry if not isinstance(part, dict)]
        assert len(parts) % 2 == 0, f"{widget['title']}: {entry} is not ns, name, k, v, ..."
        dimensions = dict(zip(parts[2::2], parts[3::2], strict=True))
        reads.append(Read(widget["title"], parts[0], resolve(parts[1]), dimensions))
    return reads


def alarm_reads() -> list[Read]:
    reads = []
    for key, alarm in locals_of(OBSERVABILITY)["metric_alarms"].items():
        reads.append(
            Read(f"alarm {key}", alarm["namespace"], resolve(alarm["metric"]), alarm["dimensions"])
        )
    for (kind, name), body in resources(OBSERVABILITY).items():
        if kind != "aws_cloudwatch_metric_alarm":
            continue
        for query in body.get("metric_query", []):
            for metric in query.get("metric", []):
                reads.append(
                    Read(
                        f"alarm {name}",
                        metric["namespace"],
                        resolve(metric["metric_name"]),
                        metric["dimensions"],
                    )
                )
    return reads


SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)',\s*'(?P<stat>\w+)'")


def searches() -> list[tuple[str, str, str, set[str], dict[str, str]]]:
    """(widget, namespace, metric, schema dimensions, filters) of each SEARCH."""
    found = []
    for widget, entry in widget_entries():
        if not (len(entry) == 1 and isinstance(entry[0], dict)):
            continue
        expression = resolve(entry[0]["expression"])
        if not expression.startswith("SEARCH("):
            continue
        match = SEARCH.search(expression.replace(OWN, EMF_NAMESPACE))
        assert match, f"{widget['title']}: cannot read {expression}"
        namespace, *dimension_names = [p.strip().strip('"') for p in match["schema"].split(",")]
        terms = dict(re.findall(r'(\w+)="([^"]*)"', match["terms"]))
        metric = terms.pop("MetricName")
        found.append((widget["title"], namespace, metric, set(dimension_names), terms))
    return found


# ----------------------------------------------------------------------------- checks


def test_the_module_writes_to_the_namespace_the_code_emits_to() -> None:
    assert locals_of(TERRAFORM)["metric_namespace"] == EMF_NAMESPACE


def test_the_worker_emits_its_registry_under_prometheus_names_with_bounded_dimensions() -> None:
    names = {name for name, _ in worker_schema()}
    # A sample of what must be there, so an empty schema cannot pass the checks below.
    assert {
        "rnr_worker_messages_total",
        "rnr_worker_gauges_total",
        "rnr_worker_processing_seconds",
        "rnr_worker_routing_seconds",
        "rnr_worker_consumer_active",
    } <= names
    for _, dimensions in worker_schema():
        assert {key for key, _ in dimensions} <= {"service", "outcome", "reason"}


@pytest.mark.parametrize("source", ["dashboard", "alarms"])
def test_every_metric_read_is_emitted_with_those_dimensions(source: str) -> None:
    reads = dashboard_reads() if source == "dashboard" else alarm_reads()
    assert reads
    own = emitted()
    for read in reads:
        if read.namespace == OWN:
            key = (OWN, read.metric, frozenset(read.dimensions.items()))
            assert key in own, (
                f"{read.where}: {read.metric} {read.dimensions} is not emitted; the code "
                f"emits {sorted(d for n, m, d in own if m == read.metric) or 'no such metric'}"
            )
        else:
            expected = AWS_METRICS.get((read.namespace, read.metric))
            assert expected is not None, f"{read.where}: unknown {read.namespace} {read.metric}"
            assert set(read.dimensions) == expected, f"{read.where}: {read}"


def test_every_search_matches_a_metric_the_worker_emits() -> None:
    found = searches()
    assert len(found) >= 2
    for widget, namespace, metric, dimension_names, filters in found:
        assert namespace == EMF_NAMESPACE, widget
        matching = [
            dimensions
            for ns, name, dimensions in emitted()
            if name == metric and {key for key, _ in dimensions} == dimension_names
        ]
        assert matching, f"{widget}: no {metric} with dimensions {sorted(dimension_names)}"
        for key, value in filters.items():
            assert any((key, value) in dimensions for dimensions in matching), (widget, key)


def test_expressions_refer_to_metrics_of_their_own_widget() -> None:
    for widget in locals_of(OBSERVABILITY)["metric_widgets"]:
        ids = {
            part["id"]
            for entry in widget["metrics"]
            for part in entry
            if isinstance(part, dict) and "id" in part
        }
        for entry in widget["metrics"]:
            if len(entry) == 1 and isinstance(entry[0], dict):
                expression = resolve(entry[0]["expression"])
                if not expression.startswith("SEARCH("):
                    used = set(re.findall(r"\b[a-z][a-z0-9_]*\b", expression))
                    assert used <= ids, f"{widget['title']}: {used - ids} undefined"


def test_the_task_counts_come_from_container_insights_which_is_enabled() -> None:
    cluster = resources(MODULES / "compute")[("aws_ecs_cluster", "this")]
    settings = {s["name"]: s["value"] for s in cluster["setting"]}
    assert settings["containerInsights"] in {"enabled", "enhanced"}


def grafana_panels() -> list[dict[str, Any]]:
    dashboard = json.loads(GRAFANA.read_text())
    return [panel for panel in dashboard["panels"] if panel.get("type") != "row"]


def prometheus_names(panel: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for target in panel.get("targets", []):
        names |= set(re.findall(r"\brnr_[a-z_]+", target.get("expr", "")))
    return names


def widget_services(widget: dict[str, Any]) -> set[str]:
    """The services whose metrics (or, for a log widget, log group) a widget reads."""
    if "query" in widget:
        return {
            service for service in LAMBDAS if f"'${{local.{service}_log_group}}'" in widget["query"]
        }
    services = set()
    for entry in widget["metrics"]:
        parts = [part for part in entry if not isinstance(part, dict)]
        services |= {parts[i + 1] for i in range(2, len(parts) - 1, 2) if parts[i] == "service"}
        if len(entry) == 1 and isinstance(entry[0], dict):
            services |= set(re.findall(r'service="(\w+)"', resolve(entry[0]["expression"])))
    return services


def test_every_grafana_panel_has_a_cloudwatch_widget_of_the_same_title() -> None:
    scope = locals_of(OBSERVABILITY)
    widgets = {w["title"]: w for w in [*scope["metric_widgets"], *scope["log_widgets"]]}
    panels = grafana_panels()
    assert len(panels) >= 10, "the Grafana dashboard was not found"
    for panel in panels:
        title = panel["title"]
        assert title in widgets, f"Grafana panel {title!r} has no CloudWatch widget"
        names = prometheus_names(panel)
        assert names, title
        # rnr_<service>_...: the widget reads that service's figures.
        wanted = {name.split("_")[1] for name in names}
        assert wanted <= widget_services(widgets[title]), (title, wanted)


def test_worker_panels_read_the_same_metrics_in_cloudwatch() -> None:
    """The worker exports its registry under Prometheus names: a Grafana panel's worker
    series must be the same metric in its CloudWatch widget."""
    scope = locals_of(OBSERVABILITY)
    widgets = {w["title"]: w for w in scope["metric_widgets"]}
    read_by_title: dict[str, set[str]] = {}
    for read in dashboard_reads():
        read_by_title.setdefault(read.where, set()).add(read.metric)
    for title, _, metric, _, _ in searches():
        read_by_title.setdefault(title, set()).add(metric)
    checked = 0
    for panel in grafana_panels():
        for name in prometheus_names(panel):
            if not name.startswith("rnr_worker_"):
                continue
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert base in read_by_title.get(panel["title"], set()), (panel["title"], name)
            assert panel["title"] in widgets
            checked += 1
    assert checked >= 6


def autoscaler_module() -> ast.Module:
    return ast.parse((REPO_ROOT / "services" / "autoscaler" / "autoscaler.py").read_text())


def decision_fields() -> set[str]:
    for function in ast.walk(autoscaler_module()):
        if isinstance(function, ast.FunctionDef) and function.name == "decision_record":
            return _dict_keys(function, autoscaler_module())
    raise AssertionError("services/autoscaler/autoscaler.py has no decision_record")


def logged_messages() -> set[str]:
    return {
        call.args[0].value
        for call in ast.walk(autoscaler_module())
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in {"info", "warning", "error"}
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }


def test_log_widgets_query_what_the_autoscaler_logs() -> None:
    scope = locals_of(OBSERVABILITY)
    assert scope["autoscaler_log_group"] == '${var.function_log_group_names["autoscaler"]}'
    fields = decision_fields() | {"@timestamp"}
    for widget in scope["log_widgets"]:
        query = unescape(widget["query"])
        assert query.startswith("SOURCE '${local.autoscaler_log_group}' |"), widget["title"]
        [message] = re.findall(r'filter message = "([^"]+)"', query)
        assert message in logged_messages(), f"{widget['title']}: nothing logs {message!r}"
        used = set()
        for clause in re.findall(r"\|\s*fields ([^|]+)", query):
            used |= {field.strip() for field in clause.split(",")}
        used |= set(re.findall(r"\bby ((?!bin\()\w+)", query))
        assert used, widget["title"]
        assert used <= fields, f"{widget['title']}: {used - fields} not in the decision record"


def test_every_alarm_can_take_extra_actions_and_the_validation_knows_them_all() -> None:
    scope = locals_of(OBSERVABILITY)
    keys = set(scope["metric_alarms"])
    for (kind, name), body in resources(OBSERVABILITY).items():
        if kind == "aws_cloudwatch_metric_alarm" and name != "metric":
            keys.add(body["alarm_name"].removeprefix("${var.name}-"))
            action = body["alarm_actions"]
            assert action == f'${{local.actions["{body["alarm_name"][12:]}"]}}', name
    assert keys == {
        "failed-invocations",
        "dead-lettered-products",
        "worker-errors",
        "oldest-message-age",
        "postproc-quarantines",
        "producer-not-succeeding",
        "worker-not-ready",
    }
    variables = (OBSERVABILITY / "variables.tf").read_text()
    block = variables.split('variable "extra_alarm_actions"', 1)[1].split("\nvariable ", 1)[0]
    [listed] = re.findall(r"contains\(\[([^\]]*)\], key\)", block)
    assert set(re.findall(r'"([^"]+)"', listed)) == keys


def test_the_worker_exports_emf_in_aws_and_not_by_default() -> None:
    from services.worker.settings import WorkerSettings

    assert WorkerSettings.model_fields["worker_emf_interval_seconds"].default == 0
    env_worker = locals_of(TERRAFORM)["env_worker"]
    assert env_worker["WORKER_EMF_INTERVAL_SECONDS"] == "${var.worker.emf_interval_seconds}"
    worker_type = (TERRAFORM / "variables.tf").read_text().split('variable "worker"', 1)[1]
    [default] = re.findall(r"emf_interval_seconds\s*=\s*optional\(number,\s*(\d+)\)", worker_type)
    assert int(default) == 60


def test_the_checks_above_can_fail() -> None:
    """A misspelt metric and a wrong dimension are not among what the code emits."""
    own = emitted()
    assert (OWN, "QueueReady", frozenset({("service", "autoscaler")})) in own
    assert (OWN, "QueueReadyy", frozenset({("service", "autoscaler")})) not in own
    assert (OWN, "QueueReady", frozenset({("service", "worker")})) not in own
    assert (OWN, "rnr_worker_messages_total", frozenset({("service", "worker")})) not in own
