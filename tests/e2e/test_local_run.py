"""``make run`` as a newcomer runs it: the whole pipeline as processes, once.

With nothing set it starts RabbitMQ and Redis of its own; with RABBITMQ_URL / REDIS_URL
it checks them first and fails at once, saying why, when they cannot be used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import xarray

from tests.support.processes import REPO_ROOT

BROKER_VARIABLES = ("RABBITMQ_URL", "REDIS_URL", "RABBITMQ_MANAGEMENT_URL", "INVOKE_TOKEN")


def runner_env(**variables: str) -> dict[str, str]:
    """The developer's environment without broker settings, plus ``variables``."""
    env = {key: value for key, value in os.environ.items() if key not in BROKER_VARIABLES}
    return {**env, "PYTHONPATH": str(REPO_ROOT), **variables}


def run(cwd: Path, *args: str, timeout: float, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devstack.local.run", *args],
        cwd=cwd,  # its .local-run/ lands here, not in the checkout
        env=runner_env(**variables),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.timeout(300)
def test_local_run_starts_its_own_brokers_and_moves_every_product_through_every_stage(
    tmp_path: Path,
) -> None:
    finished = run(tmp_path, "--timeout", "90", "--keep", timeout=280)
    output = finished.stdout
    assert finished.returncode == 0, output + finished.stderr
    for step in ("[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]"):
        assert step in output
    assert "starting RabbitMQ and Redis of this run's own on free ports" in output

    # Every service's health, metrics and invoke URL, and the brokers', are printed.
    for name in ("worker", "producer", "autoscaler", "postproc"):
        [line] = [line for line in output.splitlines() if line.strip().startswith(f"{name} ")]
        port = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", line).group(1)
        assert f"http://127.0.0.1:{port}/metrics" in line
        assert (f"invoke POST http://127.0.0.1:{port}/invoke" in line) == (name != "worker")
    amqp = re.search(r"RabbitMQ +amqp://guest:\*\*\*@127\.0\.0\.1:(\d+)/", output)
    assert amqp and int(amqp.group(1)) != 5672
    assert re.search(r"management UI http://127\.0\.0\.1:\d+", output)
    assert re.search(r"Redis +redis://127\.0\.0\.1:\d+/0", output)

    summary = json.loads(output[output.index("{\n") : output.rindex("}") + 1])
    produced = summary["producer"]
    assert produced["published"] == produced["listed"] > 0
    assert summary["worker"]["acked"] == produced["published"]
    # The flooding fixture gauges lie on the sample hydrofabric: each gets a forecast.
    routed = {key.split("/")[1] for key in summary["routed_forecasts"]}
    assert routed == {"HPDT2", "TRKT2", "PRLL1", "ILRO2"}
    assert summary["gauges"]["skipped: outside_conus"] == 1
    assert summary["gauges"]["skipped: no_reach_id"] == 1
    assert summary["worker"]["dead_lettered"] == 0
    assert summary["autoscaler"]["ready"] == 0
    # The autoscaler read the private node's management API, not a derived :15672.
    assert summary["autoscaler"]["depth_source"] == "management_api"
    # Every routed forecast file becomes rows of the inherited-forecast table.
    postproc = summary["postproc"]
    assert postproc["processed"] == len(summary["routed_forecasts"])
    assert postproc["quarantined"] == 0 and postproc["written"] is True
    assert postproc["table_rows"] > 0

    # --keep: the outputs it listed outlive the emulator, where it says they are.
    outputs = tmp_path / ".local-run" / "outputs"
    assert f"outputs kept in {outputs}" in output
    for key in summary["routed_forecasts"]:
        assert (outputs / key).is_file(), key
    with xarray.open_dataset(outputs / summary["routed_forecasts"][0]) as forecast:
        assert forecast.sizes["feature_id"] > 0
    table = outputs / "postprocess" / "latest" / "inherited_rfc_forecasts.csv"
    assert len(table.read_text().splitlines()) == postproc["table_rows"] + 1


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def test_wrong_rabbitmq_credentials_fail_at_once_naming_the_cause(
    tmp_path: Path, rabbitmq_url: str, redis_url: str
) -> None:
    started = time.monotonic()
    finished = run(
        tmp_path,
        timeout=60,
        RABBITMQ_URL=_with_password(rabbitmq_url, "not-the-password"),
        REDIS_URL=redis_url,
    )
    elapsed = time.monotonic() - started
    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "RabbitMQ refused the credentials in RABBITMQ_URL (user 'guest'" in finished.stdout
    assert "not-the-password" not in finished.stdout + finished.stderr
    assert "Traceback" not in finished.stdout + finished.stderr
    assert elapsed < 15, elapsed
    assert not (tmp_path / ".local-run").exists()  # nothing was started


def test_a_rabbitmq_url_where_nothing_listens_is_named(tmp_path: Path) -> None:
    closed = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1
    finished = run(tmp_path, timeout=60, RABBITMQ_URL=closed, REDIS_URL="redis://127.0.0.1:1/0")
    assert finished.returncode == 1
    assert "RabbitMQ is not reachable at 127.0.0.1:1 (RABBITMQ_URL)" in finished.stdout
    assert "Redis is not reachable at 127.0.0.1:1 (REDIS_URL)" in finished.stdout
    assert "Traceback" not in finished.stdout + finished.stderr


def test_without_the_server_packages_it_names_what_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    code = (
        "import sys, devstack.brokers as b; b.SBIN_DIRS = (); "
        "from devstack.local.run import main; sys.exit(main([]))"
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
    assert "RabbitMQ is not installed" in finished.stdout
    assert "sudo apt-get install rabbitmq-server (Debian/Ubuntu)" in finished.stdout
    assert "brew install rabbitmq (macOS)" in finished.stdout
    assert "or set RABBITMQ_URL to a running RabbitMQ" in finished.stdout
