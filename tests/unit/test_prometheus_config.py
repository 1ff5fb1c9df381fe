"""Both scrape configs pass ``promtool check config`` and scrape the same jobs.

Compose's ``devstack/observability/prometheus.yml`` and the one ``make run-forever
PROMETHEUS=1`` writes for the ports of its run (devstack.observability.prometheus)
name the services' jobs alike, so a query written against one works on the other.
promtool comes with Debian's prometheus package; without it these tests skip, except
in CI, where .ci/run installs it and they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.observability import COMPOSE_PROMETHEUS_CONFIG, SERVICE_JOBS
from devstack.observability import prometheus as local_prometheus


def promtool() -> str:
    found = local_prometheus.find_binary("promtool")
    if found is None:
        message = f"promtool is not installed. {local_prometheus.INSTALL_HINT}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return found


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )


def jobs(config_text: str) -> list[str]:
    return [job["job_name"] for job in yaml.safe_load(config_text)["scrape_configs"]]


def generated(tmp_path: Path) -> Path:
    targets = {job: f"127.0.0.1:{40000 + n}" for n, job in enumerate(SERVICE_JOBS)}
    path = tmp_path / "prometheus.yml"
    path.write_text(local_prometheus.scrape_config(targets, 5))
    return path


def test_compose_scrape_config_passes_promtool() -> None:
    result = check_config(COMPOSE_PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_local_runs_scrape_config_passes_promtool(tmp_path: Path) -> None:
    result = check_config(generated(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_fails_a_broken_config(tmp_path: Path) -> None:
    # The check can fail: a timeout longer than the interval is refused.
    config = json.loads(generated(tmp_path).read_text())
    config["global"]["scrape_timeout"] = "30s"
    broken = tmp_path / "broken.yml"
    broken.write_text(json.dumps(config))
    result = check_config(broken)
    assert result.returncode != 0
    assert "scrape timeout greater than scrape interval" in result.stdout + result.stderr


def test_both_configs_scrape_the_services_under_the_same_job_names(tmp_path: Path) -> None:
    local = jobs(generated(tmp_path).read_text())
    assert local == list(SERVICE_JOBS)
    assert set(local) <= set(jobs(COMPOSE_PROMETHEUS_CONFIG.read_text()))


@pytest.mark.parametrize("interval", [1, 5, 15])
def test_the_generated_timeout_stays_below_the_interval(tmp_path: Path, interval: int) -> None:
    config = json.loads(local_prometheus.scrape_config({"worker": "127.0.0.1:1"}, interval))
    timeout = float(config["global"]["scrape_timeout"].removesuffix("s"))
    assert timeout <= interval
    assert config["global"]["scrape_interval"] == f"{interval}s"
    assert config["scrape_configs"] == [
        {"job_name": "worker", "static_configs": [{"targets": ["127.0.0.1:1"]}]}
    ]
