"""Dashboards for the local stack: Prometheus scrape configs and the Grafana dashboard.

``prometheus.yml`` is compose's scrape config (service names as hosts); ``grafana/`` holds
the provisioning (datasource, dashboard provider) and ``grafana/dashboards/`` the
dashboard JSON that Grafana loads. :mod:`devstack.observability.prometheus` writes the
same scrape jobs for ``make run-forever PROMETHEUS=1``, which runs the machine's own
Prometheus on the ports of that run; :mod:`devstack.observability.dashboard` reads the
panel queries back, for the tests that evaluate every one of them.
"""

from __future__ import annotations

from pathlib import Path

OBSERVABILITY_DIR = Path(__file__).resolve().parent
COMPOSE_PROMETHEUS_CONFIG = OBSERVABILITY_DIR / "prometheus.yml"
DASHBOARD_FILE = OBSERVABILITY_DIR / "grafana" / "dashboards" / "rnr-pipeline.json"
GRAFANA_PROVISIONING_DIR = OBSERVABILITY_DIR / "grafana" / "provisioning"
# The scrape job of each service: the same names in compose's config and the generated one.
SERVICE_JOBS = ("producer", "worker", "autoscaler", "postproc")
