"""``make run``: the whole pipeline on this machine, without Docker.

Starts a RabbitMQ node (management plugin on) and a Redis of its own on free ports
(``devstack.brokers``) unless ``RABBITMQ_URL`` / ``REDIS_URL`` point at running ones,
whose credentials it checks before anything else starts. Then an embedded moto server
for S3 and Secrets Manager, the replay server for weather.gov/NWPS, and every service as
its own process, started with the same commands docker-compose.yml uses. It invokes the
producer once, waits until the worker has written an output for every published
product, invokes the autoscaler and post-processor, and prints what passed through each
stage. ``--keep-running`` then hands over to the scheduler until Ctrl-C. ``--prometheus``
(``make run-forever PROMETHEUS=1``) also runs the machine's Prometheus, scraping every
service, on a free port with storage of its own, deleted when the run stops.

The emulator's buckets live in memory and vanish when the run ends; ``--keep`` (``make
run KEEP=1``) first copies the output bucket to ``.local-run/outputs/``. Service logs go
to ``.local-run/<service>.log``. ``RABBITMQ_MANAGEMENT_URL`` and ``INVOKE_TOKEN`` from the
environment are passed on to the services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import devstack
from devstack.brokers import BrokerStartError, MissingServer, private_brokers
from devstack.observability import SERVICE_JOBS
from devstack.observability import prometheus as local_prometheus
from rnr.storage.output_layout import is_forecast_key, is_product_record_key, listing_prefix

LOG_DIR = Path(".local-run")
OUTPUTS_DIR = LOG_DIR / "outputs"
OUTPUT_BUCKET = "rnr-output"
OUTPUT_PREFIX = "replace_and_route"
POSTPROC_PREFIX = "postprocess"
# devstack is imported from the checkout, not installed: the replay server, bootstrap and
# scheduler processes find it through PYTHONPATH, whatever their working directory.
CHECKOUT = Path(devstack.__file__).resolve().parent.parent
PROBE_SECONDS = 5.0
SERVICES = ("worker", "producer", "autoscaler", "postproc")


class RunFailed(RuntimeError):
    """Why the run stopped; printed without a traceback."""


def say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ----------------------------------------------------------------- the given servers


def _address(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or default_port}"


async def _probe_rabbitmq(url: str) -> None:
    import logging

    import aio_pika

    # aiormq logs the failure too; the caller says it once, in a sentence.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    connection = await aio_pika.connect(url, timeout=PROBE_SECONDS)
    await connection.close()


def check_rabbitmq(url: str) -> str | None:
    """Why ``url`` cannot be used (a sentence naming ``RABBITMQ_URL``), or None."""
    import aio_pika

    user = unquote(urlsplit(url).username or "guest")
    try:
        asyncio.run(_probe_rabbitmq(url))
    except aio_pika.exceptions.ProbableAuthenticationError:
        return (
            f"RabbitMQ refused the credentials in RABBITMQ_URL (user {user!r} at "
            f"{_address(url, 5672)}): correct them, or unset RABBITMQ_URL and make run "
            "starts a broker of its own"
        )
    except (OSError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        return (
            f"RabbitMQ is not reachable at {_address(url, 5672)} (RABBITMQ_URL): {reason}. "
            "Start it, or unset RABBITMQ_URL and make run starts a broker of its own"
        )
    except aio_pika.exceptions.AMQPConnectionError as exc:  # e.g. no access to the vhost
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):  # aiormq wraps a refused TCP connection
            return (
                f"RabbitMQ is not reachable at {_address(url, 5672)} (RABBITMQ_URL): {cause}. "
                "Start it, or unset RABBITMQ_URL and make run starts a broker of its own"
            )
        return f"RabbitMQ at {_address(url, 5672)} refused RABBITMQ_URL: {exc}"
    except aio_pika.exceptions.AMQPError:  # the broker closed the connection while opening
        vhost = unquote(urlsplit(url).path[1:]) or "/"
        return (
            f"RabbitMQ at {_address(url, 5672)} would not open virtual host {vhost!r} for "
            f"user {user!r} (RABBITMQ_URL): does it exist, and may the user use it?"
        )
    return None


def check_redis(url: str) -> str | None:
    """Why ``url`` cannot be used (a sentence naming ``REDIS_URL``), or None."""
    import redis
    from redis import exceptions

    client = redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_SECONDS, socket_timeout=PROBE_SECONDS
    )
    try:
        client.ping()
    except (exceptions.AuthenticationError, exceptions.AuthenticationWrongNumberOfArgsError):
        return (
            f"Redis refused the credentials in REDIS_URL (at {_address(url, 6379)}): correct "
            "them, or unset REDIS_URL and make run starts a Redis of its own"
        )
    except exceptions.ResponseError as exc:  # NOAUTH: a password is required
        return f"Redis at {_address(url, 6379)} (REDIS_URL) answered: {exc}"
    except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as exc:
        return (
            f"Redis is not reachable at {_address(url, 6379)} (REDIS_URL): {exc}. Start it, "
            "or unset REDIS_URL and make run starts a Redis of its own"
        )
    finally:
        client.close()
    return None


@dataclass(frozen=True)
class Brokers:
    rabbitmq_url: str
    redis_url: str
    management_url: str | None  # None: the autoscaler derives it from RABBITMQ_URL
    private: bool  # a node of this run's own (its queues vanish with it)


@contextlib.contextmanager
def brokers_for_this_run() -> Iterator[Brokers]:
    """The servers named by RABBITMQ_URL / REDIS_URL once they answered, and private
    ones for those not named; raises :class:`RunFailed` saying what is wrong."""
    given_amqp, given_redis = os.environ.get("RABBITMQ_URL"), os.environ.get("REDIS_URL")
    problems = [
        problem
        for problem in (
            check_rabbitmq(given_amqp) if given_amqp else None,
            check_redis(given_redis) if given_redis else None,
        )
        if problem
    ]
    if problems:
        raise RunFailed("\n  ".join(problems))
    starting = [
        name for name, given in (("RabbitMQ", given_amqp), ("Redis", given_redis)) if not given
    ]
    if starting:
        print(f"  starting {' and '.join(starting)} of this run's own on free ports", flush=True)
    try:
        with private_brokers(rabbitmq=not given_amqp, redis=not given_redis) as started:
            yield Brokers(
                rabbitmq_url=given_amqp or started.amqp_url or "",
                redis_url=given_redis or started.redis_url or "",
                management_url=started.management_url or os.environ.get("RABBITMQ_MANAGEMENT_URL"),
                private=not given_amqp,
            )
    except MissingServer as exc:
        variable = "RABBITMQ_URL" if exc.server == "RabbitMQ" else "REDIS_URL"
        raise RunFailed(f"{exc}; or set {variable} to a running {exc.server}") from exc
    except BrokerStartError as exc:
        raise RunFailed(str(exc)) from exc


# ------------------------------------------------------------------------ the stack


def http_json(method: str, url: str, timeout: float = 120) -> Any:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Content-Type", "application/json")
    # The services require the token when the developer's environment sets one.
    if token := os.environ.get("INVOKE_TOKEN"):
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


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
        """Raise, with the end of its log, as soon as any process has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = LOG_DIR / f"{name}.log"
                raise RunFailed(
                    f"{name} exited with code {process.returncode}; the end of {log}:\n{tail(log)}"
                )

    def wait_http(self, url: str, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RunFailed(f"{what} did not become ready at {url} within {timeout:.0f}s")

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


def list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
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


def keep_outputs(s3: Any, bucket: str, folder: Path) -> int:
    """Copy every object of ``bucket`` (latest versions) under ``folder``, which is
    emptied first so that it shows this run only; returns how many."""
    shutil.rmtree(folder, ignore_errors=True)
    keys = list_keys(s3, bucket)
    for key in keys:
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return len(keys)


def print_endpoints(brokers: Brokers, moto: str, replay: str, ports: dict[str, int]) -> None:
    from rnr.messaging.connection import redact

    print("  every service on this machine:", flush=True)
    for name in SERVICES:
        root = f"http://127.0.0.1:{ports[name]}"
        invoke = "" if name == "worker" else f"  invoke POST {root}/invoke"
        print(
            f"    {name:<11} health {root}/healthz  ready {root}/readyz  "
            f"metrics {root}/metrics{invoke}",
            flush=True,
        )
    print(f"    {'replay':<11} {replay} (weather.gov; NWPS under /nwps/v1; faults under /_admin)")
    print(f"    {'moto':<11} {moto} (S3 and Secrets Manager; any credentials)")
    rabbitmq = redact(brokers.rabbitmq_url)
    if brokers.management_url:
        rabbitmq += f"  management UI {brokers.management_url} (the same credentials)"
    print(f"    {'RabbitMQ':<11} {rabbitmq}")
    print(f"    {'Redis':<11} {redact(brokers.redis_url)}", flush=True)


def start_prometheus(stack: Stack, ports: dict[str, int], storage: Path) -> str:
    """The machine's Prometheus, scraping this run's services, once it has scraped each
    of them (so that the run's traffic shows in ``increase()``); returns its URL."""
    binary = local_prometheus.find_binary()
    if binary is None:
        raise RunFailed(local_prometheus.INSTALL_HINT)
    targets = {job: f"127.0.0.1:{ports[job]}" for job in SERVICE_JOBS}
    config = (LOG_DIR / "prometheus.yml").resolve()
    interval = local_prometheus.LOCAL_SCRAPE_INTERVAL_SECONDS
    config.write_text(local_prometheus.scrape_config(targets, interval))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack.start("prometheus", local_prometheus.command(binary, config, storage, port))
    stack.wait_http(f"{url}/-/ready", "Prometheus")
    try:
        local_prometheus.wait_for_first_scrape(url, len(targets))
    except local_prometheus.PrometheusNotReady as exc:
        raise RunFailed(f"{exc}; see {LOG_DIR / 'prometheus.log'}") from exc
    print(
        f"    {'prometheus':<11} {url} (every service's /metrics every {interval}s; "
        f"config {config}; storage {storage}, deleted at the end)",
        flush=True,
    )
    print(
        f"    {'grafana':<11} not run here: `make up` runs Grafana with the rnr-pipeline "
        "dashboard on http://localhost:3000 (admin/admin)",
        flush=True,
    )
    return url


def print_how_to_inspect(moto: str, kept: Path | None, keep_running: bool) -> None:
    table = f"{POSTPROC_PREFIX}/latest/inherited_rfc_forecasts"
    if kept is not None:
        print(f"  outputs kept in {kept.resolve()}:", flush=True)
        print(f"    forecasts  {kept}/{OUTPUT_PREFIX}/<LID>/troute_output_*.nc")
        print(f"    records    {kept}/{OUTPUT_PREFIX}/products/YYYY/MM/DD/<product id>.json")
        print(f"    table      {kept}/{table}.csv (and .parquet, GeoParquet EPSG:5070)")
        print(
            '    open one:  .venv/bin/python -c "import sys, xarray; '
            'print(xarray.open_dataset(sys.argv[1]))" <file.nc>',
            flush=True,
        )
        return
    if keep_running:
        print(f"  outputs are in the emulator's {OUTPUT_BUCKET} bucket while this runs:")
        print(
            f"    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url "
            f"{moto} s3 ls s3://{OUTPUT_BUCKET}/ --recursive",
            flush=True,
        )
    print(
        "  the emulator keeps outputs in memory only: run `make run KEEP=1` (or --keep) to "
        f"copy them to {OUTPUTS_DIR}/ before it stops",
        flush=True,
    )


def _stop_on_sigterm() -> None:
    """SIGTERM (a supervisor, a test) stops the run the way Ctrl-C does: cleaned up."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.local.run", description=__doc__)
    parser.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument(
        "--keep",
        action="store_true",
        help=f"copy the output bucket to {OUTPUTS_DIR}/ before the emulator stops",
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for outputs")
    parser.add_argument(
        "--prometheus",
        action="store_true",
        help="also run this machine's Prometheus (Debian's prometheus package), scraping "
        "every service, and print its URL",
    )
    args = parser.parse_args(argv)
    if args.prometheus and local_prometheus.find_binary() is None:
        print(f"  {local_prometheus.INSTALL_HINT}", flush=True)
        return 1
    _stop_on_sigterm()
    say("1/6", "RabbitMQ and Redis")
    try:
        with brokers_for_this_run() as brokers:
            return _run(args, brokers)
    except RunFailed as exc:
        print(f"  {exc}", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0


def _run(args: argparse.Namespace, brokers: Brokers) -> int:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    # moto's web server logs every request to the terminal; keep the progress readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    moto_url = f"http://127.0.0.1:{moto_port}"
    run_id = uuid.uuid4().hex[:8]
    replay_port = free_port()
    ports = {name: free_port() for name in SERVICES}
    replay_url = f"http://127.0.0.1:{replay_port}"
    python_path = os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": python_path,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "INPUT_BUCKET": "rnr-input",
        "HYDROFABRIC_LOCATION": "hydrofabric/small/parquet",
        "HYDROFABRIC_CACHE_DIR": str((LOG_DIR / "hydrofabric").resolve()),
        "OUTPUT_BUCKET": OUTPUT_BUCKET,
        "OUTPUT_PREFIX": OUTPUT_PREFIX,
        "POSTPROC_PREFIX": POSTPROC_PREFIX,
        "RABBITMQ_URL": brokers.rabbitmq_url,
        # A run of its own: fresh queues and dedupe keys, so every run shows data flowing.
        "RABBITMQ_EXCHANGE": f"rnr-local-{run_id}",
        "RABBITMQ_QUEUE": f"rnr-local-{run_id}.products",
        "REDIS_URL": brokers.redis_url,
        "DEDUPE_KEY_PREFIX": f"rnr:local:{run_id}:",
        "NWS_API_URL": replay_url,
        "NWPS_API_URL": f"{replay_url}/nwps/v1",
        # The replay fixtures' forecasts were issued in 2025: keep them in the table.
        "POSTPROC_MAX_FORECAST_AGE_HOURS": "87600",
        # Every service listens on this machine only, whatever the shell says: this run
        # reaches them on 127.0.0.1, where /invoke is open without a token (an
        # INVOKE_TOKEN from the shell is passed on, required and sent).
        "HTTP_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    if brokers.management_url:
        env["RABBITMQ_MANAGEMENT_URL"] = brokers.management_url
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=env["AWS_REGION"],
        # The emulator's credentials, not whatever the developer's shell holds.
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    stack = Stack(env)
    python = sys.executable
    finished = False
    storage = Path(tempfile.mkdtemp(prefix="rnr-prometheus-")) if args.prometheus else None
    try:
        say("2/6", f"AWS emulator (moto) on {moto_url}; creating buckets and secret")
        bootstrap = subprocess.run(
            [python, "-m", "devstack.local.bootstrap"], env=env, capture_output=True, text=True
        )
        if bootstrap.returncode != 0:
            raise RunFailed(f"the bootstrap failed:\n{bootstrap.stdout}{bootstrap.stderr}")
        say("3/6", "starting the replay server, worker, producer, autoscaler and post-processor")
        stack.start("replay", [python, "-m", "devstack.replay", "--port", str(replay_port)])
        stack.start("worker", [python, "-m", "services.worker"], HTTP_PORT=str(ports["worker"]))
        for name in ("producer", "autoscaler", "postproc"):
            stack.start(
                name, [python, "-m", f"services.{name}", "serve"], HTTP_PORT=str(ports[name])
            )
        stack.wait_http(f"{replay_url}/healthz", "replay server")
        for name in ("producer", "autoscaler", "postproc"):
            stack.wait_http(f"http://127.0.0.1:{ports[name]}/healthz", name)
        stack.wait_http(f"http://127.0.0.1:{ports['worker']}/readyz", "worker consumer")
        print_endpoints(brokers, moto_url, replay_url, ports)
        if storage is not None:
            start_prometheus(stack, ports, storage)
        print(f"  logs: {LOG_DIR.resolve()}/<service>.log", flush=True)

        say("4/6", "invoking the producer")
        produced = http_json("POST", f"http://127.0.0.1:{ports['producer']}/invoke")
        print(f"  producer: {json.dumps(produced)}", flush=True)

        say("5/6", f"waiting for the worker to process {produced['published']} products")
        deadline = time.monotonic() + args.timeout
        records: list[str] = []
        while time.monotonic() < deadline:
            stack.check_alive()
            outputs = list_keys(s3, OUTPUT_BUCKET, listing_prefix(OUTPUT_PREFIX))
            records = [key for key in outputs if is_product_record_key(OUTPUT_PREFIX, key)]
            print(
                f"  worker: {len(records)}/{produced['published']} products processed",
                flush=True,
            )
            if len(records) >= produced["published"]:
                break
            time.sleep(1)
        outputs = list_keys(s3, OUTPUT_BUCKET, listing_prefix(OUTPUT_PREFIX))
        forecasts = [key for key in outputs if is_forecast_key(OUTPUT_PREFIX, key)]
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
            "gauges": gauge_outcomes(s3, OUTPUT_BUCKET, records),
            "routed_forecasts": sorted(forecasts),
            "autoscaler": autoscaled,
            "postproc": postprocessed,
            "logs": str(LOG_DIR.resolve()),
        }
        print(json.dumps(summary, indent=2), flush=True)
        complete = len(records) >= produced["published"]
        finished = True
        if not complete:
            print(f"  not every product reached S3: see {LOG_DIR / 'worker.log'}", flush=True)
        if args.keep_running:
            print_how_to_inspect(moto_url, None, keep_running=True)
            targets = ",".join(
                f"{name}=http://127.0.0.1:{ports[name]}/invoke@{period}"
                for name, period in (("producer", 60), ("autoscaler", 60), ("postproc", 300))
            )
            stack.start(
                "scheduler", [python, "-m", "devstack.local.scheduler"], SCHEDULER_TARGETS=targets
            )
            print("running on schedules; Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    stack.check_alive()
                    time.sleep(2)
        return 0 if complete else 1
    finally:
        print("stopping services", flush=True)
        stack.stop()
        if storage is not None:
            shutil.rmtree(storage, ignore_errors=True)
        kept = None
        if args.keep:
            count = keep_outputs(s3, OUTPUT_BUCKET, OUTPUTS_DIR)
            print(f"  copied {count} objects of s3://{OUTPUT_BUCKET} to {OUTPUTS_DIR}/")
            kept = OUTPUTS_DIR
        if finished and (not args.keep_running or kept is not None):
            print_how_to_inspect(moto_url, kept, keep_running=False)
        moto.stop()
        if not brokers.private:
            asyncio.run(_delete_run_queues(brokers.rabbitmq_url, run_id))


async def _delete_run_queues(url: str, run_id: str) -> None:
    """A run's queues exist only for it: leave a broker we were given as we found it."""
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
