"""``make run`` as a newcomer runs it: the whole pipeline as processes, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.processes import REPO_ROOT


def test_local_run_moves_every_product_through_every_stage(tmp_path, rabbitmq_url, redis_url):
    finished = subprocess.run(
        [sys.executable, "-m", "rnr.local.run", "--timeout", "90"],
        cwd=tmp_path,  # its .local-run/ logs land here, not in the checkout
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = finished.stdout
    assert finished.returncode == 0, output + finished.stderr
    for step in ("[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]"):
        assert step in output
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
    # Every routed forecast file becomes rows of the inherited-forecast table.
    postproc = summary["postproc"]
    assert postproc["processed"] == len(summary["routed_forecasts"])
    assert postproc["quarantined"] == 0 and postproc["written"] is True
    assert postproc["table_rows"] > 0


def test_local_run_says_how_to_start_what_is_not_running(tmp_path):
    closed = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1
    finished = subprocess.run(
        [sys.executable, "-m", "rnr.local.run"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "RABBITMQ_URL": closed},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert "RabbitMQ is not reachable. Start it with: rabbitmq-server -detached" in finished.stdout
    assert "Redis is not reachable" not in finished.stdout
