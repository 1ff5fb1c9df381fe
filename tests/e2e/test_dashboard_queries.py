"""Every panel of the committed Grafana dashboard shows data from the real services.

``python -m devstack.local.run --keep-running --prometheus`` (what ``make run-forever
PROMETHEUS=1`` runs) starts the whole pipeline as processes and the machine's real
Prometheus scraping them. Once its first products went through, the test drives the
traffic that the remaining panels need, all through the stack's own surfaces: a second
producer run (duplicates), a gauge that stops flooding (the replay server's fault
injection, so the post-processor withdraws its rows), a product whose text answers 404
(dead-lettered at once, so the dead-letter queue is not empty), and a file in the output
bucket that is no forecast (quarantined). Then it evaluates every panel query of the
dashboard JSON through Prometheus's HTTP API and fails on one that returns nothing,
names a metric Prometheus does not know, or stays at zero where the traffic must show.

Skips when the prometheus binary is missing, except in CI (.ci/run installs it).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.observability import prometheus as local_prometheus
from devstack.observability.dashboard import base_metric, load_dashboard, panel_queries
from tests.e2e.test_local_run import runner_env
from tests.support.servers import wait_until

# Panels whose series may all be 0 after a run that drained its queue.
MAY_BE_ZERO = {"Work queue: ready and unacked", "Oldest ready message age (upper estimate)"}
JUNK_FORECAST_KEY = "replace_and_route/JUNK1/troute_output_202505050000.nc"


def require_prometheus() -> None:
    if local_prometheus.find_binary() is None or local_prometheus.find_binary("promtool") is None:
        message = local_prometheus.INSTALL_HINT
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the dashboard test: {message}")
        pytest.skip(message)


@dataclass
class LocalRun:
    """The runner as a process, its output read line by line as it comes."""

    process: subprocess.Popen[str]
    cwd: Path
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {needle!r} in the run's output:\n{self.output[-6000:]}")
            time.sleep(0.5)

    def url_of(self, name: str) -> str:
        match = re.search(rf"^ +{name} +.*?(http://127\.0\.0\.1:\d+)", self.output, re.M)
        assert match, f"no {name} URL in:\n{self.output}"
        return match.group(1)

    def log(self, name: str) -> str:
        path = self.cwd / ".local-run" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def local_run(tmp_path: Path) -> Iterator[LocalRun]:
    require_prometheus()
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.local.run", "--keep-running", "--prometheus"],
        cwd=tmp_path,  # its .local-run/ lands here, not in the checkout
        env=runner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = LocalRun(process, tmp_path)
    reader = threading.Thread(target=run.read, daemon=True)
    reader.start()
    try:
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the runner stops as on Ctrl-C
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        reader.join(timeout=10)


def invoke(url: str) -> dict[str, Any]:
    answer = httpx.post(f"{url}/invoke", json={}, timeout=180)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def worker_messages(worker_url: str) -> dict[str, float]:
    text = httpx.get(f"{worker_url}/metrics", timeout=10).text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "rnr_worker_messages"
        for sample in family.samples
        if sample.name == "rnr_worker_messages_total"
    }


def prometheus_query(url: str, expr: str) -> list[dict[str, Any]]:
    data = local_prometheus.api(url, "/api/v1/query", query=expr)
    assert data["resultType"] == "vector", (expr, data["resultType"])
    result: list[dict[str, Any]] = data["result"]
    return result


def drive_the_traffic_every_panel_needs(run: LocalRun) -> float:
    """A withdrawal, a dead letter, a quarantine and duplicates; returns when it ended."""
    replay, moto = run.url_of("replay"), run.url_of("moto")
    worker = run.url_of("worker")
    # The scheduler invokes the three functions once at its start: let that round end.
    wait_until(
        lambda: run.log("scheduler").count('"invoked"') >= 3,
        timeout=120,
        what="the scheduler's first round",
    )
    # HPDT2's newer forecast no longer floods; a newer product names it.
    gauge = httpx.get(f"{replay}/nwps/v1/gauges/HPDT2", timeout=10).json()
    gauge["status"]["forecast"]["floodCategory"] = "no_flooding"
    fault = {"path": "^/nwps/v1/gauges/HPDT2$", "status": 200, "body": json.dumps(gauge)}
    httpx.post(f"{replay}/_admin/faults", json=fault, timeout=10).raise_for_status()
    added = httpx.post(
        f"{replay}/_admin/products", json={"count": 2, "lids": ["HPDT2"]}, timeout=10
    ).json()["products"]
    # The second product's text is gone (404): the worker dead-letters it at once.
    missing = {"path": f"^/products/{added[1]['id']}$", "status": 404}
    httpx.post(f"{replay}/_admin/faults", json=missing, timeout=10).raise_for_status()
    # A file in the output bucket that is no NetCDF: the post-processor quarantines it.
    s3 = boto3.client(
        "s3",
        endpoint_url=moto,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.put_object(Bucket="rnr-output", Key=JUNK_FORECAST_KEY, Body=b"not a forecast file")

    before = worker_messages(worker)
    produced = invoke(run.url_of("producer"))
    assert produced["published"] == 2, produced
    assert produced["duplicate"] > 0, produced
    wait_until(
        lambda: (
            worker_messages(worker)["acked"] >= before["acked"] + 1
            and worker_messages(worker)["dead_lettered"] >= before["dead_lettered"] + 1
        ),
        timeout=90,
        what="the worker settling both new products",
    )
    # The management API's queue counts lag up to its statistics interval (5 s): the
    # autoscaler runs until its reading shows the dead letter, as its schedule would.
    readings: list[dict[str, Any]] = []
    wait_until(
        lambda: (
            readings.append(invoke(run.url_of("autoscaler"))) or readings[-1]["dead_letter_ready"]
        ),
        timeout=60,
        interval=2,
        what="the autoscaler reading the dead letter",
    )
    assert readings[-1]["dead_letter_ready"] == 1, readings[-1]
    postprocessed = invoke(run.url_of("postproc"))
    assert postprocessed["quarantined"] == 1, postprocessed
    assert postprocessed["withdrawn_gauges"] == ["HPDT2"], postprocessed
    assert postprocessed["withdrawn_rows"] > 0, postprocessed
    return time.time()


def wait_for_a_scrape_after(prometheus: str, moment: float) -> None:
    """Until every target has been scraped since ``moment`` (a sample's timestamp is
    its scrape's start)."""

    def scraped() -> bool:
        result = prometheus_query(prometheus, "min(timestamp(up))")
        return bool(result) and float(result[0]["value"][1]) > moment

    interval = local_prometheus.LOCAL_SCRAPE_INTERVAL_SECONDS
    wait_until(scraped, timeout=6 * interval, interval=0.5, what="a scrape after the traffic")


def finite_nonzero(result: list[dict[str, Any]]) -> bool:
    values = (float(series["value"][1]) for series in result)
    return any(math.isfinite(value) and value != 0 for value in values)


@pytest.mark.timeout(480)
def test_every_dashboard_panel_query_returns_data_from_the_running_services(
    local_run: LocalRun,
) -> None:
    local_run.wait_for_line("running on schedules", timeout=300)
    prometheus = local_run.url_of("prometheus")
    storage = Path(re.search(r"storage (\S+), deleted at the end", local_run.output).group(1))
    assert storage.is_dir()
    # The generated scrape config is one promtool accepts.
    config = local_run.cwd / ".local-run" / "prometheus.yml"
    checked = subprocess.run(
        [local_prometheus.find_binary("promtool") or "", "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    ended = drive_the_traffic_every_panel_needs(local_run)
    wait_for_a_scrape_after(prometheus, ended)

    known = set(local_prometheus.api(prometheus, "/api/v1/label/__name__/values"))
    queries = panel_queries(load_dashboard())
    assert queries
    problems: list[str] = []
    with_data: dict[str, bool] = {}
    for query in queries:
        unknown = query.metric_names - known
        if unknown:
            problems.append(f"{query.panel} [{query.ref_id}] names unknown {sorted(unknown)}")
        result = prometheus_query(prometheus, query.expr)
        if not result:
            problems.append(f"{query.panel} [{query.ref_id}] returned nothing: {query.expr}")
        with_data[query.panel] = with_data.get(query.panel, False) or finite_nonzero(result)
    for panel, has_data in with_data.items():
        if not has_data and panel not in MAY_BE_ZERO:
            problems.append(f"{panel}: every series is 0 or NaN after the traffic")
    assert not problems, "\n".join(problems)
    # Histograms: Prometheus stores the series the dashboard's names derive from.
    assert {base_metric(n) for q in queries for n in q.metric_names} <= {
        base_metric(n) for n in known
    }

    # Ctrl-C (SIGTERM here) stops Prometheus with the services and deletes its storage.
    local_run.process.send_signal(signal.SIGTERM)
    assert local_run.process.wait(timeout=120) == 0, local_run.output[-4000:]
    assert not storage.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{prometheus}/-/ready", timeout=2)


def test_the_runner_names_the_package_when_prometheus_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    code = (
        "import sys, devstack.observability.prometheus as p; "
        "p.find_binary = lambda name='prometheus': None; "
        "from devstack.local.run import main; sys.exit(main(['--prometheus']))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**runner_env(), "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "sudo apt-get install prometheus" in finished.stdout
    assert not (tmp_path / ".local-run").exists()  # nothing was started
