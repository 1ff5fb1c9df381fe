"""The panel queries of the committed Grafana dashboard, as the tests evaluate them.

A panel's queries are its targets' ``expr``; row panels carry none (and a collapsed row
keeps its panels inside it, which are read too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.observability import DASHBOARD_FILE

# Project metrics and the RabbitMQ plugin's; a histogram's series end in these suffixes.
_METRIC_NAME = re.compile(r"\b((?:rnr|rabbitmq)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str
    legend: str

    @property
    def metric_names(self) -> set[str]:
        """The metric names the query selects, as Prometheus stores them."""
        return set(_METRIC_NAME.findall(self.expr))


def load_dashboard(path: Path = DASHBOARD_FILE) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that is not a row, in the dashboard's order."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panels({"panels": panel.get("panels", [])}))
        else:
            found.append(panel)
    return found


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(panel["title"], target["refId"], target["expr"], target.get("legendFormat", ""))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def base_metric(name: str) -> str:
    """The metric a series name belongs to: a histogram's ``_bucket`` etc. removed."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name
