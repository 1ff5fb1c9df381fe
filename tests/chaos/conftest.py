"""Fixtures of the chaos suite: private servers for the session, a fresh world per test,
service logs on failure, and a summary of every scenario's figures at the end.

The servers the suite breaks are its own (see tests/support/chaos_nodes.py): the
machine's RabbitMQ and Redis are never stopped or restarted. Figures: printed in the
"chaos figures" section of the terminal summary, and written as JSON to the path in
``RNR_CHAOS_REPORT`` when it is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import Replay
from tests.support.chaos_audit import ChaosBroker, ChaosReport
from tests.support.chaos_fleet import Fleet
from tests.support.chaos_nodes import MotoProcess, PrivateRabbitMQ, PrivateRedis, tail
from tests.support.chaos_scenario import (
    Scenario,
    chaos_seed,
    scenario_topology,
    service_env,
    upload_sample_hydrofabric,
)

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
def chaos_dir() -> Iterator[Path]:
    """The session's folder in /tmp: the private RabbitMQ node (run as the rabbitmq user)
    must be able to reach its own folder inside, which pytest's tmp_path (0700) forbids."""
    folder = Path(tempfile.mkdtemp(prefix="rnr-chaos-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def private_rabbitmq(chaos_dir: Path) -> Iterator[PrivateRabbitMQ]:
    node = PrivateRabbitMQ(chaos_dir)
    try:
        node.start()
    except Exception:
        print(f"--- private RabbitMQ log ---\n{tail(node.server_log, 60)}")
        node.stop()
        raise
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def private_redis(chaos_dir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(chaos_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(chaos_dir: Path) -> Iterator[MotoProcess]:
    server = MotoProcess(chaos_dir).start()
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
    private_rabbitmq: PrivateRabbitMQ,
    private_redis: PrivateRedis,
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
    broker = ChaosBroker(private_rabbitmq.url, topology)
    broker.declare()
    env = service_env(
        topology=topology,
        rabbitmq_url=private_rabbitmq.url,
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
            print(f"--- private RabbitMQ ---\n{private_rabbitmq.log_tail()}")
        try:
            broker.delete_topology()
        except Exception as exc:  # the node may be down after a failed restart test
            print(f"could not delete the scenario's queues: {exc!r}")
