"""Fixtures of the chaos suite: private servers for the session, a fresh world per test,
service logs on failure, and a summary of every scenario's figures at the end.

The servers the suite breaks are its own: a RabbitMQ node and a Redis from
``devstack.brokers.private_brokers`` (the pair ``make run`` and the rest of the tests use,
started apart from theirs) and a moto process; the machine's RabbitMQ and Redis are never
stopped or restarted. Without the server programs the suite skips, naming the packages
to install, except under ``CI=true``, where it fails. Figures: printed in the
"chaos figures" section of the terminal summary, and written as JSON to the path in
``RNR_CHAOS_REPORT`` when it is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from devstack.brokers import (
    Brokers,
    MissingServer,
    RabbitMQNode,
    RedisServer,
    private_brokers,
    tail,
)
from tests.conftest import Replay
from tests.support.chaos_audit import ChaosBroker, ChaosReport
from tests.support.chaos_fleet import Fleet
from tests.support.chaos_scenario import (
    Scenario,
    chaos_seed,
    scenario_topology,
    service_env,
    upload_sample_hydrofabric,
)
from tests.support.servers import MotoProcess

REPORT = pytest.StashKey[ChaosReport]()
PHASES = pytest.StashKey[dict[str, pytest.TestReport]]()


def _report(config: pytest.Config) -> ChaosReport:
    if REPORT not in config.stash:
        config.stash[REPORT] = ChaosReport()
    return config.stash[REPORT]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    item.stash.setdefault(PHASES, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    phases = request.node.stash.get(PHASES, {})
    return any(report.failed for report in phases.values())


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if REPORT not in config.stash or not config.stash[REPORT].scenarios:
        return
    report = config.stash[REPORT]
    terminalreporter.section("chaos figures")
    for line in report.lines():
        terminalreporter.write_line(line)
    target = os.environ.get("RNR_CHAOS_REPORT")
    if target:
        report.write(Path(target))
        terminalreporter.write_line(f"written to {target}")


@pytest.fixture(scope="session")
def chaos_report(pytestconfig: pytest.Config) -> ChaosReport:
    return _report(pytestconfig)


@pytest.fixture(scope="session")
def chaos_brokers() -> Iterator[Brokers]:
    """The suite's own RabbitMQ node and Redis, apart from the session's (tests/conftest.py):
    the suite stops and restarts them. A missing program skips the suite (fails in CI)."""
    try:
        with private_brokers() as started:
            yield started
    except MissingServer as exc:
        message = f"the chaos suite starts a RabbitMQ node and a Redis of its own: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def private_rabbitmq(chaos_brokers: Brokers) -> RabbitMQNode:
    assert chaos_brokers.rabbitmq is not None
    return chaos_brokers.rabbitmq


@pytest.fixture(scope="session")
def private_redis(chaos_brokers: Brokers) -> RedisServer:
    assert chaos_brokers.redis is not None
    return chaos_brokers.redis


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoProcess]:
    server = MotoProcess(tmp_path_factory.mktemp("chaos")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(moto_server: MotoProcess) -> str:
    """Where the services reach S3; a test puts a proxy in between by overriding this."""
    return moto_server.endpoint


@pytest.fixture
def scenario(
    request: pytest.FixtureRequest,
    private_rabbitmq: RabbitMQNode,
    private_redis: RedisServer,
    moto_server: MotoProcess,
    s3_endpoint: str,
    replay: Replay,
    tmp_path: Path,
    chaos_report: ChaosReport,
) -> Iterator[Scenario]:
    unique = uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    bucket = f"rnr-chaos-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    location = upload_sample_hydrofabric(s3, bucket)
    topology = scenario_topology(unique)
    broker = ChaosBroker(private_rabbitmq.amqp_url, topology)
    broker.declare()
    env = service_env(
        topology=topology,
        rabbitmq_url=private_rabbitmq.amqp_url,
        redis_url=private_redis.url,
        replay=replay,
        s3_endpoint=s3_endpoint,
        bucket=bucket,
        hydrofabric_location=location,
        cache_dir=str(tmp_path / "hydrofabric"),
        unique=unique,
    )
    (tmp_path / "logs").mkdir()
    fleet = Fleet(tmp_path / "logs", env)
    name = request.node.name.removeprefix("test_")
    world = Scenario(
        name=name,
        replay=replay,
        broker=broker,
        fleet=fleet,
        s3=s3,
        bucket=bucket,
        env=env,
        report=chaos_report,
        seed=chaos_seed(),
    )
    try:
        yield world
    finally:
        fleet.stop_all()
        if _failed(request):
            print(f"seed {world.seed} (RNR_CHAOS_SEED={world.seed} replays it)")
            print(fleet.tails())
            print(f"--- private RabbitMQ ---\n{tail(private_rabbitmq.node_log, 20)}")
        try:
            broker.delete_topology()
        except Exception as exc:  # the node may be down after a failed restart test
            print(f"could not delete the scenario's queues: {exc!r}")
