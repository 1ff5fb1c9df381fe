"""The machine's own Prometheus for ``make run-forever PROMETHEUS=1`` and the dashboard test.

The local run knows the ports it started the services on only once it runs, so it writes
a scrape config for them (the same job names as compose's ``prometheus.yml``) and starts
Debian's ``prometheus`` binary on a free port of 127.0.0.1, with a storage folder of its
own that is deleted when the run stops. :func:`wait_for_first_scrape` holds the run until
every target has been scraped once: a counter's increase from then on is visible in
``increase()``, which cannot see a change made before a series' first sample.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

# Short enough that a run's traffic shows within seconds; the local run scrapes 4 targets.
LOCAL_SCRAPE_INTERVAL_SECONDS = 5
INSTALL_HINT = (
    "Prometheus is not installed: sudo apt-get install prometheus (Debian/Ubuntu; it "
    "brings promtool too), brew install prometheus (macOS), or run without PROMETHEUS=1"
)


class PrometheusNotReady(RuntimeError):
    """Prometheus did not start, or did not scrape every target in time; says why."""


def find_binary(name: str = "prometheus") -> str | None:
    """``prometheus`` or ``promtool`` on PATH, else where Debian installs them."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/bin") / name
    return str(debian) if debian.is_file() else None


def scrape_config(targets: Mapping[str, str], interval_seconds: float) -> str:
    """A Prometheus configuration with one job per ``{job: "host:port"}``.

    Written as JSON, which is YAML too: the runner needs no YAML library.
    """
    interval = f"{interval_seconds:g}s"
    config = {
        "global": {
            "scrape_interval": interval,
            # Prometheus refuses a timeout longer than the interval.
            "scrape_timeout": f"{max(interval_seconds - 1, 1):g}s",
            "evaluation_interval": interval,
        },
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def command(binary: str, config: Path, storage: Path, port: int) -> list[str]:
    """The server's command line: this config, this storage, 127.0.0.1 only."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        # A local run lasts hours at most; never fill the disk of a forgotten one.
        "--storage.tsdb.retention.size=256MB",
    ]


def api(url: str, path: str, timeout: float = 5.0, **params: str) -> Any:
    """The ``data`` of a Prometheus HTTP API answer; raises on an error answer."""
    query = f"?{urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=timeout) as answer:
        body = json.loads(answer.read())
    if body.get("status") != "success":
        raise PrometheusNotReady(f"{path}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def _targets_health(url: str) -> dict[str, tuple[str, str]]:
    """Each active target's job, health and last error."""
    data = api(url, "/api/v1/targets", state="active")
    return {
        target["scrapeUrl"]: (target["health"], target.get("lastError") or "")
        for target in data["activeTargets"]
    }


def wait_for_first_scrape(url: str, expected: int, timeout: float = 60.0) -> None:
    """Return once Prometheus answers and has scraped all ``expected`` targets (up)."""
    deadline = time.monotonic() + timeout
    health: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        try:
            health = _targets_health(url)
        except (urllib.error.URLError, OSError, PrometheusNotReady):
            health = {}
        if len(health) >= expected and all(state == "up" for state, _ in health.values()):
            return
        time.sleep(0.5)
    pending = {
        scrape: f"{state}{f' ({error})' if error else ''}"
        for scrape, (state, error) in health.items()
        if state != "up"
    }
    raise PrometheusNotReady(
        f"Prometheus at {url} had not scraped every service within {timeout:.0f}s: "
        f"{len(health)}/{expected} targets known, not up: {pending or 'none yet'}"
    )
