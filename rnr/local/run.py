"""``make run``: the whole pipeline on this machine, without Docker.

Uses the local RabbitMQ and Redis, an embedded moto server for S3 and Secrets
Manager, the replay server for weather.gov/NWPS, and runs every service as its own
process, started with the same commands docker-compose.yml uses. It invokes the
producer once, waits until the worker has written an output for every published
product, invokes the autoscaler and post-processor, and prints what passed through
each stage. ``--keep-running`` then hands over to the scheduler until Ctrl-C.

Service logs go to ``.local-run/<service>.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOG_DIR = Path(".local-run")
HOW_TO_START = {
    "RabbitMQ": "rabbitmq-server -detached && rabbitmqctl await_startup",
    "Redis": "redis-server --daemonize yes --port 6379 --save '' --appendonly no",
}


def say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def http_json(method: str, url: str, timeout: float = 120) -> Any:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Content-Type", "application/json")
    # The services require the token when the developer's environment sets one.
    if token := os.environ.get("INVOKE_TOKEN"):
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def wait_http(url: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not become ready at {url} within {timeout}s")


@dataclass
class Stack:
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], **extra_env: str) -> None:
        LOG_DIR.mkdir(exist_ok=True)
        log = (LOG_DIR / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command,
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; see {LOG_DIR / name}.log"
                )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing it", flush=True)
                process.kill()


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def gauge_outcomes(s3: Any, bucket: str, record_keys: list[str]) -> dict[str, int]:
    """How the gauges of the processed products ended: routed, or skipped and why."""
    counts: dict[str, int] = {}
    for key in record_keys:
        record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for gauge in record.get("gauges", []):
            label = gauge["outcome"] + (f": {gauge['reason']}" if gauge.get("reason") else "")
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def metric_total(metrics_text: str, name: str, label: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}{{") and f'"{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnr.local.run", description=__doc__)
    parser.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for outputs")
    args = parser.parse_args(argv)

    rabbitmq_url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    say("1/6", "checking RabbitMQ and Redis")
    missing = [
        name
        for name, url, port in (("RabbitMQ", rabbitmq_url, 5672), ("Redis", redis_url, 6379))
        if not reachable(url, port)
    ]
    if missing:
        for name in missing:
            print(f"  {name} is not reachable. Start it with: {HOW_TO_START[name]}", flush=True)
        return 1

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    # moto's web server logs every request to the terminal; keep the progress readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    run_id = uuid.uuid4().hex[:8]
    replay_port, ports = free_port(), {name: free_port() for name in ("worker", "producer")}
    ports |= {name: free_port() for name in ("autoscaler", "postproc")}
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "INPUT_BUCKET": "rnr-input",
        "HYDROFABRIC_LOCATION": "hydrofabric/small/parquet",
        "HYDROFABRIC_CACHE_DIR": str((LOG_DIR / "hydrofabric").resolve()),
        "OUTPUT_BUCKET": "rnr-output",
        "RABBITMQ_URL": rabbitmq_url,
        # A run of its own: fresh queues and dedupe keys, so every run shows data flowing.
        "RABBITMQ_EXCHANGE": f"rnr-local-{run_id}",
        "RABBITMQ_QUEUE": f"rnr-local-{run_id}.products",
        "REDIS_URL": redis_url,
        "DEDUPE_KEY_PREFIX": f"rnr:local:{run_id}:",
        "NWS_API_URL": f"http://127.0.0.1:{replay_port}",
        "NWPS_API_URL": f"http://127.0.0.1:{replay_port}/nwps/v1",
        # The replay fixtures' forecasts were issued in 2025: keep them in the table.
        "POSTPROC_MAX_FORECAST_AGE_HOURS": "87600",
        # Every service listens on this machine only, whatever the shell says: this run
        # reaches them on 127.0.0.1, where /invoke is open without a token (an
        # INVOKE_TOKEN from the shell is passed on, required and sent).
        "HTTP_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    stack = Stack(env)
    python = sys.executable
    try:
        say("2/6", f"AWS emulator (moto) on 127.0.0.1:{moto_port}; creating buckets and secret")
        subprocess.run(
            [python, "-m", "rnr.local.bootstrap"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        say("3/6", "starting the replay server, worker, producer, autoscaler and post-processor")
        stack.start("replay", [python, "-m", "rnr.replay", "--port", str(replay_port)])
        stack.start("worker", [python, "-m", "services.worker"], HTTP_PORT=str(ports["worker"]))
        for name in ("producer", "autoscaler", "postproc"):
            stack.start(
                name, [python, "-m", f"services.{name}", "serve"], HTTP_PORT=str(ports[name])
            )
        wait_http(f"http://127.0.0.1:{replay_port}/healthz", "replay server")
        for name in ("producer", "autoscaler", "postproc"):
            wait_http(f"http://127.0.0.1:{ports[name]}/healthz", name)
        wait_http(f"http://127.0.0.1:{ports['worker']}/readyz", "worker consumer")

        say("4/6", "invoking the producer")
        produced = http_json("POST", f"http://127.0.0.1:{ports['producer']}/invoke")
        print(f"  producer: {json.dumps(produced)}", flush=True)

        say("5/6", f"waiting for the worker to process {produced['published']} products")
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            # The emulator's credentials, not whatever the developer's shell holds.
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        deadline = time.monotonic() + args.timeout
        records: list[str] = []
        while time.monotonic() < deadline:
            stack.check_alive()
            records = list_keys(s3, env["OUTPUT_BUCKET"], "replace_and_route/products/")
            print(
                f"  worker: {len(records)}/{produced['published']} products processed",
                flush=True,
            )
            if len(records) >= produced["published"]:
                break
            time.sleep(1)
        forecasts = [
            key
            for key in list_keys(s3, env["OUTPUT_BUCKET"], "replace_and_route/")
            if key.endswith(".nc")
        ]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports['worker']}/metrics").read()
        autoscaled = http_json("POST", f"http://127.0.0.1:{ports['autoscaler']}/invoke")
        postprocessed = http_json("POST", f"http://127.0.0.1:{ports['postproc']}/invoke")

        say("6/6", "summary")
        text = metrics.decode()
        summary = {
            "producer": produced,
            "worker": {
                outcome: int(metric_total(text, "rnr_worker_messages_total", outcome))
                for outcome in ("acked", "retried", "dead_lettered", "requeued")
            },
            "gauges": gauge_outcomes(s3, env["OUTPUT_BUCKET"], records),
            "routed_forecasts": sorted(forecasts),
            "autoscaler": autoscaled,
            "postproc": postprocessed,
            "logs": str(LOG_DIR.resolve()),
        }
        print(json.dumps(summary, indent=2), flush=True)
        complete = len(records) >= produced["published"]
        if not complete:
            print("  not every product reached S3: see the worker log", flush=True)
        if args.keep_running:
            targets = ",".join(
                f"{name}=http://127.0.0.1:{ports[name]}/invoke@{period}"
                for name, period in (("producer", 60), ("autoscaler", 60), ("postproc", 300))
            )
            stack.start(
                "scheduler", [python, "-m", "rnr.local.scheduler"], SCHEDULER_TARGETS=targets
            )
            print("running on schedules; Ctrl-C to stop", flush=True)
            while True:
                stack.check_alive()
                time.sleep(2)
        return 0 if complete else 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("stopping services", flush=True)
        stack.stop()
        moto.stop()
        asyncio.run(_delete_run_queues(rabbitmq_url, run_id))


async def _delete_run_queues(url: str, run_id: str) -> None:
    """A local run's queues exist only for it: leave the broker as we found it."""
    import aio_pika

    from rnr.messaging.topology import Topology, delete_topology

    topology = Topology(
        f"rnr-local-{run_id}", f"rnr-local-{run_id}.products", "quorum", (5.0, 30.0, 120.0, 600.0)
    )
    try:
        connection = await aio_pika.connect(url)
    except Exception:
        return
    async with connection:
        await delete_topology(await connection.channel(), topology)


if __name__ == "__main__":
    sys.exit(main())
